//! The report model: one versioned JSON document per run.
//!
//! Everything a renderer shows and everything a later `report show` / `report diff` needs
//! lives here, including the raw HDR histograms so numbers can be recomputed or merged. The
//! layout is documented field by field in `reports/SCHEMA.md`; bump [`SCHEMA_VERSION`] on any
//! change that an older reader would misread.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::fleet::WorkerBreakdown;
use crate::histogram::LatencyHistogram;
use crate::provenance::Provenance;
use crate::threshold::ThresholdResult;

/// The version of the JSON layout written by this crate.
pub const SCHEMA_VERSION: u32 = 1;

/// The outcome of one load run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Layout version, [`SCHEMA_VERSION`] when written by this crate.
    pub schema_version: u32,
    /// Unique id of the run (a UUIDv7, so ids sort by start time).
    pub run_id: String,
    /// Name of the scenario that was run.
    pub scenario: String,
    /// Base URL the load was sent to.
    pub target: String,
    /// The load profile as it was planned (after scaling and overrides).
    pub profile: ProfileSummary,
    /// When load generation started (RFC 3339).
    pub started_at: DateTime<Utc>,
    /// When load generation ended (RFC 3339).
    pub ended_at: DateTime<Utc>,
    /// How long the profile planned to run, in seconds.
    pub planned_duration_s: f64,
    /// How long the run actually lasted, in seconds.
    pub actual_duration_s: f64,
    /// True when the run did not complete its plan (interrupted, target down, unreachable).
    pub partial: bool,
    /// Why the run is partial; `None` for a complete run.
    pub partial_reason: Option<String>,
    /// Whole-run numbers over every request.
    pub totals: Totals,
    /// Per-transaction numbers, sorted by name.
    pub transactions: Vec<TransactionStats>,
    /// Failed requests by kind of failure.
    pub errors_by_kind: ErrorCounts,
    /// The most frequent distinct error messages, most frequent first.
    pub error_samples: Vec<ErrorSample>,
    /// Requests grouped by HTTP status class (`2xx`…`5xx`, `none` when no response came).
    pub status_classes: Vec<StatusClassStats>,
    /// One entry per second of the run, second 0 first; requests are placed by completion time.
    pub timeseries: Vec<TimeSlice>,
    /// Open-model schedule keeping: how many iterations were due and how many started.
    pub arrivals: Option<ArrivalStats>,
    /// Client-side thresholds with their measured values.
    pub thresholds: Vec<ThresholdResult>,
    /// Overall verdict; see [`Report::recompute_verdict`] for the rule.
    pub verdict: Verdict,
    /// Server-side SLO verdicts, filled in by the SLO gate (empty until then).
    #[serde(default)]
    pub slos: Vec<SloVerdict>,
    /// Events that happened to the system during the run (chaos actions, deploys…).
    #[serde(default)]
    pub journal: Vec<JournalEvent>,
    /// A run made by many generators: what each worker contributed (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<WorkerBreakdown>,
    /// Each transaction's client-measured latency next to the server's for its route, when
    /// Prometheus was there to ask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side: Option<ServerSide>,
    /// What produced the report: build, command line, host, input digests, queries, and how the
    /// load generator fared (see [`crate::provenance`]).
    #[serde(default, skip_serializing_if = "Provenance::is_empty")]
    pub provenance: Provenance,
}

/// Client against server latency per route over the run's window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerSide {
    /// Where the server's figures come from (Prometheus URL and series selector).
    pub source: String,
    /// The PromQL asked.
    pub queries: Vec<String>,
    /// One row per transaction whose requests match a route the server reports.
    pub routes: Vec<RouteLatency>,
    /// Transactions no server route matched.
    #[serde(default)]
    pub unmatched: Vec<String>,
}

/// One transaction, the route it hits, both sides' percentiles and the gap (network, queueing
/// and the client's own time).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteLatency {
    pub transaction: String,
    pub method: String,
    pub route: String,
    pub client: Percentiles,
    pub server: Percentiles,
    /// Client p95 minus server p95, in ms.
    pub gap_p95_ms: Option<f64>,
}

/// p50, p95 and p99 in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// The load profile as it ran, in plain numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileSummary {
    /// Profile name (built-in name or the file's `name`).
    pub name: String,
    /// Human description from the profile, if any.
    pub description: Option<String>,
    /// Closed (target users) or open (target arrival rate) model.
    pub model: LoadModel,
    /// Stages in order; `target` is users (closed) or iterations per second (open).
    pub stages: Vec<StageSummary>,
    /// Open model: arrival rate at time zero, ramped from towards the first stage's target.
    pub start_rate: Option<f64>,
    /// Open model: most users (concurrent iterations) the generator may use.
    pub max_users: Option<u32>,
    /// Set in the report of one worker of a distributed run (`run --workers N --worker-index
    /// I`): which share of the profile it ran. `name` stays the whole profile's name.
    #[serde(default)]
    pub worker: Option<WorkerShare>,
    /// Set in a merged report: how many worker reports it combines.
    #[serde(default)]
    pub merged_workers: Option<u32>,
}

/// One worker's share of a distributed run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerShare {
    /// 0-based, as `--worker-index` and `JOB_COMPLETION_INDEX` count.
    pub index: u32,
    /// How many workers share the profile.
    pub workers: u32,
}

impl fmt::Display for WorkerShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "worker {} of {}", self.index + 1, self.workers)
    }
}

impl ProfileSummary {
    /// The share this report ran: the `worker` field, or — in reports written before it existed
    /// — the `(worker I of N)` suffix such reports carried in the profile name.
    pub fn worker_share(&self) -> Option<WorkerShare> {
        self.worker.or_else(|| {
            let inner = self.name.strip_suffix(')')?;
            let (_, share) = inner.rsplit_once(" (worker ")?;
            let (index, workers) = share.split_once(" of ")?;
            let (index, workers) = (index.parse::<u32>().ok()?, workers.parse::<u32>().ok()?);
            (index >= 1 && index <= workers).then(|| WorkerShare {
                index: index - 1,
                workers,
            })
        })
    }

    /// The whole profile's name, without an old report's `(worker I of N)` suffix.
    pub fn whole_name(&self) -> &str {
        match (self.worker, self.worker_share()) {
            (None, Some(_)) => self
                .name
                .rsplit_once(" (worker ")
                .map_or(self.name.as_str(), |(name, _)| name),
            _ => &self.name,
        }
    }
}

/// Which load model a profile uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadModel {
    /// A number of users loop through the scenario (k6 `ramping-vus`).
    Closed,
    /// Iterations start at a target rate regardless of response times (k6 `ramping-arrival-rate`).
    Open,
}

impl LoadModel {
    /// What a stage target counts in this model.
    pub fn target_unit(self) -> &'static str {
        match self {
            LoadModel::Closed => "users",
            LoadModel::Open => "iterations/s",
        }
    }
}

impl fmt::Display for LoadModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LoadModel::Closed => "closed",
            LoadModel::Open => "open",
        })
    }
}

/// One stage: ramp linearly to `target` over `duration_s`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageSummary {
    pub duration_s: f64,
    pub target: f64,
}

/// Latency percentiles, maximum and mean in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// Whole-run numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub requests: u64,
    pub errors: u64,
    /// `errors / requests`, 0 when there were no requests.
    pub error_rate: f64,
    /// Requests per second over the actual duration.
    pub rps: f64,
    /// Latency from the actual send to the end of the body; `None` without requests.
    pub latency: Option<LatencyStats>,
    /// Open model only: latency counted from each iteration's intended start.
    pub corrected_latency: Option<LatencyStats>,
    pub histogram: LatencyHistogram,
    pub corrected_histogram: Option<LatencyHistogram>,
}

/// Numbers for one named transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransactionStats {
    pub name: String,
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub latency: Option<LatencyStats>,
    pub corrected_latency: Option<LatencyStats>,
    pub histogram: LatencyHistogram,
    pub corrected_histogram: Option<LatencyHistogram>,
}

/// How many requests failed, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCounts {
    /// The connection could not be made (refused, reset, DNS).
    pub connect: u64,
    /// The request or the body read exceeded the request timeout.
    pub timeout: u64,
    /// A response came with a status other than the expected one.
    pub status: u64,
    /// The response had the expected status but its body failed a check.
    pub check: u64,
    /// Any other transport failure (e.g. the connection dropped mid-body).
    pub other: u64,
}

impl ErrorCounts {
    pub fn total(&self) -> u64 {
        self.connect + self.timeout + self.status + self.check + self.other
    }

    /// Counts by kind, in a fixed order, for tables and charts.
    pub fn by_kind(&self) -> [(ErrorKind, u64); 5] {
        [
            (ErrorKind::Connect, self.connect),
            (ErrorKind::Timeout, self.timeout),
            (ErrorKind::Status, self.status),
            (ErrorKind::Check, self.check),
            (ErrorKind::Other, self.other),
        ]
    }

    /// Adds one error of `kind`.
    pub fn add(&mut self, kind: ErrorKind) {
        *self.slot(kind) += 1;
    }

    /// The count for `kind`.
    pub fn get(&self, kind: ErrorKind) -> u64 {
        self.by_kind()
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }

    fn slot(&mut self, kind: ErrorKind) -> &mut u64 {
        match kind {
            ErrorKind::Connect => &mut self.connect,
            ErrorKind::Timeout => &mut self.timeout,
            ErrorKind::Status => &mut self.status,
            ErrorKind::Check => &mut self.check,
            ErrorKind::Other => &mut self.other,
        }
    }
}

/// The kinds of failed request (see [`ErrorCounts`] for their meaning).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorKind {
    Connect,
    Timeout,
    Status,
    Check,
    Other,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Status => "status",
            ErrorKind::Check => "check",
            ErrorKind::Other => "other",
        })
    }
}

/// One distinct error message and how often it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorSample {
    pub kind: ErrorKind,
    pub transaction: String,
    pub message: String,
    pub count: u64,
}

/// Requests that ended in one HTTP status class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusClassStats {
    /// `1xx`…`5xx`, or `none` when no response arrived (connect error, timeout).
    pub class: String,
    pub requests: u64,
    pub latency: Option<LatencyStats>,
    pub histogram: LatencyHistogram,
}

/// Percentiles of one time slice in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlicePercentiles {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

/// One second of the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeSlice {
    /// Seconds since the start of the run (this slice covers `[second, second + 1)`).
    pub second: u64,
    /// Requests completed in this second (so also the throughput in requests/s).
    pub requests: u64,
    pub errors: u64,
    pub errors_by_kind: ErrorCounts,
    /// Most users alive at any sample in this second.
    pub active_users: u32,
    /// `None` when no request completed in this second.
    pub latency: Option<SlicePercentiles>,
    /// Open model only: percentiles counted from the intended start.
    pub corrected_latency: Option<SlicePercentiles>,
    pub histogram: LatencyHistogram,
    pub corrected_histogram: Option<LatencyHistogram>,
}

/// Open model: how well the generator kept the arrival schedule.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArrivalStats {
    /// Iterations the rate stages scheduled before the run ended.
    pub scheduled_iterations: u64,
    /// Iterations that actually started (late ones included).
    pub started_iterations: u64,
    /// Longest delay between an iteration's intended and actual start, in ms.
    pub max_lateness_ms: f64,
}

/// Pass or fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
        })
    }
}

/// Outcome of one server-side objective, as an SLO gate judges it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SloStatus {
    Pass,
    /// Met, but close to the objective (the gate decides how close).
    Warn,
    Fail,
    /// Could not be judged (no data, source unreachable).
    Unknown,
}

impl fmt::Display for SloStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SloStatus::Pass => "pass",
            SloStatus::Warn => "warn",
            SloStatus::Fail => "fail",
            SloStatus::Unknown => "unknown",
        })
    }
}

/// A judged service level objective (generic: any source, any measure).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SloVerdict {
    /// Name of the objective, e.g. `checkout-latency`.
    pub name: String,
    pub status: SloStatus,
    /// The measured value, `None` when it could not be measured.
    pub measured: Option<f64>,
    /// Unit of `measured`, e.g. `ms`, `ratio`.
    pub unit: Option<String>,
    /// The objective in words, e.g. `p99 < 300 ms` or `availability >= 99.9 %`.
    pub objective: String,
    /// Where the value came from, e.g. `prometheus`.
    pub source: String,
    /// The query that produced the value, if any.
    pub query: Option<String>,
    /// The evaluation window, e.g. `5m` or the run's start..end.
    pub window: Option<String>,
    /// Extra explanation (why unknown, how close to the objective…).
    pub message: Option<String>,
}

/// Something that happened to the system under test during the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JournalEvent {
    /// When it happened (or started).
    pub at: DateTime<Utc>,
    /// When it ended, for events with a duration (e.g. a network partition).
    pub ended_at: Option<DateTime<Utc>>,
    /// What happened, e.g. `chaos.kill-pod`.
    pub kind: String,
    /// What it happened to, e.g. `payments`.
    pub target: String,
    /// How it went, e.g. `ok`, `failed`, `recovered`.
    pub outcome: String,
    /// Free-form detail.
    pub detail: Option<String>,
}

impl Report {
    /// The overall verdict rule: a run passes only if it completed its plan, every threshold
    /// passed and no SLO failed. A partial run never passes because its numbers cover less
    /// load than planned. SLOs that are `warn` or `unknown` do not fail the run on their own;
    /// a gate that needs data must report `fail`.
    pub fn recompute_verdict(&mut self) {
        self.verdict = if self.failure_reasons().is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
    }

    /// Why the run fails, one short sentence each; empty when it passes.
    pub fn failure_reasons(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if self.partial {
            let why = self
                .partial_reason
                .as_deref()
                .unwrap_or("reason not recorded");
            reasons.push(format!("the run is partial ({why})"));
        }
        let failed_thresholds: Vec<&str> = self
            .thresholds
            .iter()
            .filter(|t| t.status == Verdict::Fail)
            .map(|t| t.name.as_str())
            .collect();
        if !failed_thresholds.is_empty() {
            reasons.push(format!(
                "threshold failed: {}",
                failed_thresholds.join(", ")
            ));
        }
        let failed_slos: Vec<&str> = self
            .slos
            .iter()
            .filter(|s| s.status == SloStatus::Fail)
            .map(|s| s.name.as_str())
            .collect();
        if !failed_slos.is_empty() {
            reasons.push(format!("SLO failed: {}", failed_slos.join(", ")));
        }
        reasons
    }

    /// Internal consistency of the counts: the totals must equal the sum over transactions,
    /// over status classes and over the time series. Returns each mismatch found.
    pub fn consistency_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check = |what: &str, requests: u64, errors: Option<u64>| {
            if requests != self.totals.requests {
                problems.push(format!(
                    "{what}: {requests} requests, totals say {}",
                    self.totals.requests
                ));
            }
            if let Some(errors) = errors.filter(|e| *e != self.totals.errors) {
                problems.push(format!(
                    "{what}: {errors} errors, totals say {}",
                    self.totals.errors
                ));
            }
        };
        check(
            "transactions",
            self.transactions.iter().map(|t| t.requests).sum(),
            Some(self.transactions.iter().map(|t| t.errors).sum()),
        );
        check(
            "status classes",
            self.status_classes.iter().map(|s| s.requests).sum(),
            None,
        );
        check(
            "time series",
            self.timeseries.iter().map(|s| s.requests).sum(),
            Some(self.timeseries.iter().map(|s| s.errors).sum()),
        );
        check("totals histogram", self.totals.histogram.count(), None);
        check(
            "errors by kind",
            self.totals.requests,
            Some(self.errors_by_kind.total()),
        );
        problems
    }

    /// Offset of `at` from the start of the run, in seconds (negative if before it).
    pub fn offset_s(&self, at: DateTime<Utc>) -> f64 {
        (at - self.started_at).num_milliseconds() as f64 / 1000.0
    }
}

/// Groups error samples: `(kind, transaction, message) -> count`, turned into the report's
/// most-frequent-first list.
pub fn error_samples_from(counts: BTreeMap<(ErrorKind, String, String), u64>) -> Vec<ErrorSample> {
    let mut samples: Vec<ErrorSample> = counts
        .into_iter()
        .map(|((kind, transaction, message), count)| ErrorSample {
            kind,
            transaction,
            message,
            count,
        })
        .collect();
    samples.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.kind.cmp(&b.kind)));
    samples
}
