//! Where every request's latency and outcome lands during a run.
//!
//! Goose's own metrics are millisecond-granular and shaped for its reports, so each request
//! is timed with our own `Instant`s (send → end of body) and recorded here, in microseconds,
//! into HDR histograms per transaction, per status class, overall and per one-second slice.
//! One record updates all of them under one lock, which is what makes the report's totals,
//! per-transaction sums and time-series sums agree exactly.
//!
//! For the open model each request is also recorded "corrected": its latency plus how late
//! its iteration started compared to the schedule, i.e. the latency a user arriving on time
//! would have experienced (coordinated-omission correction).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reports::{ErrorCounts, ErrorKind, LatencyHistogram};

use crate::live::LiveSink;

use reports::derive::MAX_ERROR_SAMPLES;

/// One finished request.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// The transaction (named step) that made the request.
    pub transaction: &'static str,
    /// From just before sending to the end of the body (or the failure).
    pub latency: Duration,
    /// Open model: how late the iteration started; zero otherwise.
    pub lateness: Duration,
    /// HTTP status, `None` when no response arrived.
    pub status: Option<u16>,
    /// Why the request counts as failed, with a short message; `None` for success.
    pub error: Option<(ErrorKind, String)>,
}

/// Counts for the progress bar and the dead-target watch, readable without the lock.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LiveCounters {
    pub elapsed: Duration,
    pub requests: u64,
    pub errors: u64,
    pub active_users: u32,
    /// Requests completed in the last whole second.
    pub last_second_requests: u64,
}

/// Requests, errors and latency of one group (a transaction, a status class, everything).
#[derive(Clone, Debug)]
pub struct SeriesStats {
    pub requests: u64,
    pub errors: u64,
    pub latency: LatencyHistogram,
    pub corrected: Option<LatencyHistogram>,
}

impl SeriesStats {
    pub(crate) fn new(corrected: bool, make: fn() -> LatencyHistogram) -> Self {
        Self {
            requests: 0,
            errors: 0,
            latency: make(),
            corrected: corrected.then(make),
        }
    }

    fn add(&mut self, latency_us: u64, corrected_us: u64, failed: bool) {
        self.requests += 1;
        self.errors += u64::from(failed);
        self.latency.record_micros(latency_us);
        if let Some(corrected) = &mut self.corrected {
            corrected.record_micros(corrected_us);
        }
    }
}

/// One second of the run.
#[derive(Clone, Debug)]
pub struct Slice {
    pub stats: SeriesStats,
    pub errors_by_kind: ErrorCounts,
    /// Most users alive at any sample taken in this second.
    pub active_users: u32,
}

impl Slice {
    pub(crate) fn new(corrected: bool) -> Self {
        Self {
            stats: SeriesStats::new(corrected, LatencyHistogram::coarse),
            errors_by_kind: ErrorCounts::default(),
            active_users: 0,
        }
    }
}

/// Everything recorded, handed to the report assembly when the run is over.
#[derive(Clone, Debug)]
pub struct Measurements {
    pub totals: SeriesStats,
    pub transactions: BTreeMap<&'static str, SeriesStats>,
    pub status_classes: BTreeMap<&'static str, SeriesStats>,
    pub errors_by_kind: ErrorCounts,
    pub error_samples: BTreeMap<(ErrorKind, String, String), u64>,
    pub slices: Vec<Slice>,
    pub max_lateness: Duration,
}

/// What was recorded since the last [`Recorder::take_interval`]: the same views as
/// [`Measurements`], with only the seconds that were touched. Adding every interval in order
/// gives exactly the run's measurements (this is what a fleet worker streams).
#[derive(Clone, Debug)]
pub struct Interval {
    pub totals: SeriesStats,
    pub transactions: BTreeMap<&'static str, SeriesStats>,
    pub status_classes: BTreeMap<&'static str, SeriesStats>,
    pub errors_by_kind: ErrorCounts,
    pub error_samples: BTreeMap<(ErrorKind, String, String), u64>,
    pub slices: BTreeMap<usize, Slice>,
    pub max_lateness: Duration,
}

impl Interval {
    fn new(corrected: bool) -> Self {
        Self {
            totals: SeriesStats::new(corrected, LatencyHistogram::fine),
            transactions: BTreeMap::new(),
            status_classes: BTreeMap::new(),
            errors_by_kind: ErrorCounts::default(),
            error_samples: BTreeMap::new(),
            slices: BTreeMap::new(),
            max_lateness: Duration::ZERO,
        }
    }
}

struct State {
    all: Measurements,
    /// `Some` when the recorder keeps intervals (see [`Recorder::with_intervals`]).
    interval: Option<Interval>,
}

/// The shared recorder of one run.
pub struct Recorder {
    origin: Instant,
    corrected: bool,
    state: Mutex<State>,
    requests: AtomicU64,
    errors: AtomicU64,
    active_users: AtomicU32,
    /// Live observers (`--metrics-listen`, `--remote-write`) fed from the same records.
    live: Option<std::sync::Arc<dyn LiveSink>>,
}

impl Recorder {
    /// A recorder whose second 0 starts now. `corrected` turns on the open-model histograms.
    pub fn new(corrected: bool) -> Self {
        Self::starting_at(Instant::now(), corrected)
    }

    /// A recorder whose second 0 starts at `origin`.
    pub fn starting_at(origin: Instant, corrected: bool) -> Self {
        Self {
            origin,
            corrected,
            state: Mutex::new(State {
                all: Measurements {
                    totals: SeriesStats::new(corrected, LatencyHistogram::fine),
                    transactions: BTreeMap::new(),
                    status_classes: BTreeMap::new(),
                    errors_by_kind: ErrorCounts::default(),
                    error_samples: BTreeMap::new(),
                    slices: Vec::new(),
                    max_lateness: Duration::ZERO,
                },
                interval: None,
            }),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            active_users: AtomicU32::new(0),
            live: None,
        }
    }

    /// Also hands every record, iteration start and active-user sample to `live`.
    pub fn with_live(mut self, live: Option<std::sync::Arc<dyn LiveSink>>) -> Self {
        self.live = live;
        self
    }

    /// Also keeps what was recorded since the last [`Recorder::take_interval`], for a worker
    /// that streams its measurements.
    pub fn with_intervals(self) -> Self {
        self.lock().interval = Some(Interval::new(self.corrected));
        self
    }

    /// What was recorded since the previous call (or the start); `None` unless the recorder
    /// keeps intervals.
    pub fn take_interval(&self) -> Option<Interval> {
        let corrected = self.corrected;
        let mut state = self.lock();
        let interval = state.interval.as_mut()?;
        Some(std::mem::replace(interval, Interval::new(corrected)))
    }

    /// Records a request that finished now.
    pub fn record(&self, record: RequestRecord) {
        self.record_at(Instant::now(), record);
    }

    /// Records a request that finished at `finished` (placing it in that second's slice).
    pub fn record_at(&self, finished: Instant, record: RequestRecord) {
        let latency_us = micros(record.latency);
        let corrected_us = micros(record.latency + record.lateness);
        let failed = record.error.is_some();
        if let Some(live) = &self.live {
            live.request(
                record.transaction,
                record.latency,
                record.error.as_ref().map(|(kind, _)| *kind),
            );
        }
        let second = finished.saturating_duration_since(self.origin).as_secs() as usize;
        let active_users = self.active_users.load(Ordering::Relaxed);
        let class = status_class(record.status);
        let corrected = self.corrected;

        let mut state = self.lock();
        let State { all, interval } = &mut *state;
        let sample = record
            .error
            .as_ref()
            .map(|(kind, message)| (*kind, record.transaction.to_string(), message.clone()));
        let sampled = {
            let slice = slice_mut(&mut all.slices, second, corrected);
            add_to_slice(
                slice,
                latency_us,
                corrected_us,
                failed,
                active_users,
                &record,
            );
            add_run_wide(
                RunWide {
                    totals: &mut all.totals,
                    transactions: &mut all.transactions,
                    status_classes: &mut all.status_classes,
                    errors_by_kind: &mut all.errors_by_kind,
                    error_samples: &mut all.error_samples,
                    max_lateness: &mut all.max_lateness,
                },
                (latency_us, corrected_us, failed, corrected, class),
                &record,
                sample.clone(),
                None,
            )
        };
        if let Some(interval) = interval {
            let slice = interval
                .slices
                .entry(second)
                .or_insert_with(|| Slice::new(corrected));
            add_to_slice(
                slice,
                latency_us,
                corrected_us,
                failed,
                active_users,
                &record,
            );
            add_run_wide(
                RunWide {
                    totals: &mut interval.totals,
                    transactions: &mut interval.transactions,
                    status_classes: &mut interval.status_classes,
                    errors_by_kind: &mut interval.errors_by_kind,
                    error_samples: &mut interval.error_samples,
                    max_lateness: &mut interval.max_lateness,
                },
                (latency_us, corrected_us, failed, corrected, class),
                &record,
                sample,
                Some(sampled),
            );
        }
        drop(state);

        self.requests.fetch_add(1, Ordering::Relaxed);
        self.errors.fetch_add(u64::from(failed), Ordering::Relaxed);
    }

    /// A user started; returns a guard that counts it as active until dropped.
    pub fn user_started(self: &std::sync::Arc<Self>) -> ActiveUser {
        ActiveUser::new(self.clone())
    }

    /// Notes the current number of active users in the current second's slice, so seconds in
    /// which no request finishes still show who was running.
    pub fn sample_active_users(&self) {
        let second = self.origin.elapsed().as_secs() as usize;
        let active = self.active_users.load(Ordering::Relaxed);
        if let Some(live) = &self.live {
            live.active_users(active);
        }
        let corrected = self.corrected;
        let mut state = self.lock();
        let slice = slice_mut(&mut state.all.slices, second, corrected);
        slice.active_users = slice.active_users.max(active);
        if let Some(interval) = &mut state.interval {
            let slice = interval
                .slices
                .entry(second)
                .or_insert_with(|| Slice::new(corrected));
            slice.active_users = slice.active_users.max(active);
        }
    }

    /// An open-model iteration started `lateness` after it was due (for live observers; the
    /// report's lateness comes from the requests' records).
    pub fn iteration_started(&self, lateness: Duration) {
        if let Some(live) = &self.live {
            live.iteration_started(lateness);
        }
    }

    /// Counters for progress display.
    pub fn live(&self) -> LiveCounters {
        let elapsed = self.origin.elapsed();
        let last_second = (elapsed.as_secs() as usize).checked_sub(1);
        let last_second_requests = last_second.map_or(0, |second| {
            self.lock()
                .all
                .slices
                .get(second)
                .map_or(0, |s| s.stats.requests)
        });
        LiveCounters {
            elapsed,
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            active_users: self.active_users.load(Ordering::Relaxed),
            last_second_requests,
        }
    }

    /// True when, over the last `window` whole seconds, requests were made and every one of
    /// them failed to connect — the target is down, and more load only measures the outage.
    pub fn all_failed_to_connect(&self, window: Duration) -> bool {
        let now = self.origin.elapsed().as_secs() as usize;
        let window = window.as_secs() as usize;
        if window == 0 || now < window {
            return false;
        }
        let state = self.lock();
        let (requests, connect) = (now - window..now)
            .filter_map(|second| state.all.slices.get(second))
            .fold((0, 0), |(r, c), s| {
                (r + s.stats.requests, c + s.errors_by_kind.connect)
            });
        requests > 0 && connect == requests
    }

    /// A copy of everything recorded so far.
    pub fn measurements(&self) -> Measurements {
        self.lock().all.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave half a record behind that matters more
        // than losing the run's data, so keep going with what is there.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Counts one user as active from creation to drop; cloning counts another.
///
/// Goose drops a user's session data when the user task ends, however it ends, so keeping
/// this guard in the session gives an exact count of running users.
pub struct ActiveUser {
    recorder: std::sync::Arc<Recorder>,
}

impl ActiveUser {
    fn new(recorder: std::sync::Arc<Recorder>) -> Self {
        recorder.active_users.fetch_add(1, Ordering::Relaxed);
        Self { recorder }
    }
}

impl Clone for ActiveUser {
    fn clone(&self) -> Self {
        Self::new(self.recorder.clone())
    }
}

impl Drop for ActiveUser {
    fn drop(&mut self) {
        self.recorder.active_users.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The run-wide views one record updates, in the run's measurements or in an interval.
struct RunWide<'a> {
    totals: &'a mut SeriesStats,
    transactions: &'a mut BTreeMap<&'static str, SeriesStats>,
    status_classes: &'a mut BTreeMap<&'static str, SeriesStats>,
    errors_by_kind: &'a mut ErrorCounts,
    error_samples: &'a mut BTreeMap<(ErrorKind, String, String), u64>,
    max_lateness: &'a mut Duration,
}

/// Adds one record to the run-wide views; returns whether its error message was counted among
/// the samples. `sampled` forces that decision (an interval follows the run's bounded choice, so
/// intervals add up to the run's samples exactly); `None` applies the bound.
fn add_run_wide(
    views: RunWide<'_>,
    (latency_us, corrected_us, failed, corrected, class): (u64, u64, bool, bool, &'static str),
    record: &RequestRecord,
    sample: Option<(ErrorKind, String, String)>,
    sampled: Option<bool>,
) -> bool {
    views.totals.add(latency_us, corrected_us, failed);
    views
        .transactions
        .entry(record.transaction)
        .or_insert_with(|| SeriesStats::new(corrected, LatencyHistogram::fine))
        .add(latency_us, corrected_us, failed);
    views
        .status_classes
        .entry(class)
        .or_insert_with(|| SeriesStats::new(false, LatencyHistogram::fine))
        .add(latency_us, corrected_us, failed);
    *views.max_lateness = (*views.max_lateness).max(record.lateness);
    let Some(key) = sample else {
        return false;
    };
    views.errors_by_kind.add(key.0);
    let room = views.error_samples.len() < MAX_ERROR_SAMPLES;
    match (views.error_samples.get_mut(&key), sampled) {
        (Some(count), None | Some(true)) => {
            *count += 1;
            true
        }
        (None, Some(true)) => {
            views.error_samples.insert(key, 1);
            true
        }
        (None, None) if room => {
            views.error_samples.insert(key, 1);
            true
        }
        _ => false,
    }
}

fn add_to_slice(
    slice: &mut Slice,
    latency_us: u64,
    corrected_us: u64,
    failed: bool,
    active_users: u32,
    record: &RequestRecord,
) {
    slice.stats.add(latency_us, corrected_us, failed);
    slice.active_users = slice.active_users.max(active_users);
    if let Some((kind, _)) = &record.error {
        slice.errors_by_kind.add(*kind);
    }
}

pub(crate) fn slice_mut(slices: &mut Vec<Slice>, second: usize, corrected: bool) -> &mut Slice {
    if slices.len() <= second {
        slices.resize_with(second + 1, || Slice::new(corrected));
    }
    &mut slices[second]
}

/// `2xx`…`5xx`; `none` when no response arrived.
pub fn status_class(status: Option<u16>) -> &'static str {
    match status {
        None => "none",
        Some(100..=199) => "1xx",
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        Some(_) => "other",
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn record(
        transaction: &'static str,
        ms: u64,
        status: Option<u16>,
        error: Option<ErrorKind>,
    ) -> RequestRecord {
        RequestRecord {
            transaction,
            latency: Duration::from_millis(ms),
            lateness: Duration::ZERO,
            status,
            error: error.map(|k| (k, format!("{k}"))),
        }
    }

    #[test]
    fn one_record_updates_every_view() {
        let origin = Instant::now();
        let recorder = Recorder::starting_at(origin, false);
        recorder.record_at(
            origin + Duration::from_millis(100),
            record("a", 10, Some(200), None),
        );
        recorder.record_at(
            origin + Duration::from_millis(2_500),
            record("b", 20, Some(503), Some(ErrorKind::Status)),
        );
        recorder.record_at(
            origin + Duration::from_millis(2_600),
            record("a", 5, None, Some(ErrorKind::Connect)),
        );
        let m = recorder.measurements();
        assert_eq!(m.totals.requests, 3);
        assert_eq!(m.totals.errors, 2);
        assert_eq!(m.transactions["a"].requests, 2);
        assert_eq!(m.transactions["b"].errors, 1);
        assert_eq!(m.status_classes["2xx"].requests, 1);
        assert_eq!(m.status_classes["5xx"].requests, 1);
        assert_eq!(m.status_classes["none"].requests, 1);
        assert_eq!(m.slices.len(), 3);
        assert_eq!(m.slices[0].stats.requests, 1);
        assert_eq!(m.slices[1].stats.requests, 0);
        assert_eq!(m.slices[2].stats.requests, 2);
        assert_eq!(m.slices[2].errors_by_kind.connect, 1);
        assert_eq!(m.errors_by_kind.total(), 2);
        assert!(m.totals.corrected.is_none());
    }

    #[test]
    fn corrected_latency_adds_the_lateness() {
        let recorder = Recorder::new(true);
        let mut late = record("a", 2, Some(200), None);
        late.lateness = Duration::from_millis(998);
        recorder.record(late);
        let m = recorder.measurements();
        let corrected = m.totals.corrected.as_ref().unwrap().stats().unwrap();
        let uncorrected = m.totals.latency.stats().unwrap();
        assert!(
            (999.0..=1001.0).contains(&corrected.max_ms),
            "{corrected:?}"
        );
        assert!(uncorrected.max_ms < 3.0);
        assert_eq!(m.max_lateness, Duration::from_millis(998));
    }

    #[test]
    fn active_user_guards_count_themselves() {
        let recorder = Arc::new(Recorder::new(false));
        let a = recorder.user_started();
        let b = a.clone();
        assert_eq!(recorder.live().active_users, 2);
        drop(a);
        assert_eq!(recorder.live().active_users, 1);
        drop(b);
        assert_eq!(recorder.live().active_users, 0);
    }

    #[test]
    fn dead_target_needs_a_full_window_of_connect_failures() {
        let origin = Instant::now() - Duration::from_secs(8);
        let recorder = Recorder::starting_at(origin, false);
        // Seconds 0-2 succeed, seconds 3-7 all fail to connect.
        for second in 0..8u64 {
            let at = origin + Duration::from_millis(second * 1_000 + 500);
            let failed = second >= 3;
            let r = if failed {
                record("a", 1, None, Some(ErrorKind::Connect))
            } else {
                record("a", 1, Some(200), None)
            };
            recorder.record_at(at, r);
        }
        assert!(recorder.all_failed_to_connect(Duration::from_secs(5)));
        assert!(!recorder.all_failed_to_connect(Duration::from_secs(6)));
    }

    #[test]
    fn error_samples_are_bounded() {
        let recorder = Recorder::new(false);
        for i in 0..(MAX_ERROR_SAMPLES + 10) {
            let mut r = record("a", 1, Some(500), Some(ErrorKind::Status));
            r.error = Some((ErrorKind::Status, format!("message {i}")));
            recorder.record(r);
        }
        let m = recorder.measurements();
        assert_eq!(m.error_samples.len(), MAX_ERROR_SAMPLES);
        assert_eq!(m.errors_by_kind.status, (MAX_ERROR_SAMPLES + 10) as u64);
    }
}
