//! A Prometheus dataset with known answers: the services, autoscalers and consumer groups of a
//! 30-minute load test, written as OpenMetrics and backfilled into a real Prometheus.
//!
//! Every series is shaped so its SLI has a closed-form value (a histogram quantile that falls at
//! a known point of a bucket, a ratio of two constant rates, an autoscaler pinned for a known
//! time, a lag in messages or in seconds that drops below its threshold at a known step), chosen so the seed objectives
//! give each of pass, warn and fail somewhere. Samples are every 15 s on a grid aligned with
//! the window, so range queries see exactly the samples written.

use std::sync::OnceLock;

use chrono::{DateTime, TimeZone, Utc};

use super::openmetrics::OpenMetrics;
use super::prometheus::TestPrometheus;

/// Start of the data (Unix seconds, a multiple of 60).
pub const T0: i64 = 1_699_999_200;
/// Sample interval.
pub const STEP: i64 = 15;
/// The data ends 30 minutes after [`T0`].
pub const END: i64 = T0 + 1800;
/// The window the tests judge: the last 20 minutes of data.
pub const FROM: i64 = T0 + 600;
pub const TO: i64 = END;
/// The load stops 20 minutes in.
pub const LOAD_END: i64 = T0 + 1200;

/// Histogram bucket bounds of `http_request_duration_seconds`, in seconds.
pub const BOUNDS: [f64; 4] = [0.1, 0.25, 0.5, 1.0];

/// Requests per 15 s landing in each bucket (and +Inf), and the p95 that follows from it by
/// linear interpolation inside the bucket holding rank 95 of 100.
pub const LATENCY_SERVICES: [(&str, [u64; 5], f64); 3] = [
    // rank 95 is 15 of the 20 in (0.1, 0.25]: 0.1 + 0.15 * 15/20
    ("gateway-fast", [80, 20, 0, 0, 0], 0.2125),
    // 15 of the 20 in (0.25, 0.5]: 0.25 + 0.25 * 15/20
    ("gateway-slowish", [60, 20, 20, 0, 0], 0.4375),
    // 15 of the 20 in (0.5, 1]: 0.5 + 0.5 * 15/20
    ("gateway-slow", [50, 20, 10, 20, 0], 0.875),
];

/// A service's requests per 15 s by status, and the 5xx ratio that follows.
pub struct ErrorCase {
    pub service: &'static str,
    pub per_status: &'static [(&'static str, u64)],
    pub ratio: f64,
}

pub const ERROR_SERVICES: [ErrorCase; 4] = [
    ErrorCase {
        service: "orders-ok",
        per_status: &[("200", 998), ("503", 2)],
        ratio: 0.002,
    },
    // 404s are not errors of the service: 8 bad of 1000.
    ErrorCase {
        service: "orders-flaky",
        per_status: &[("200", 990), ("500", 8), ("404", 2)],
        ratio: 0.008,
    },
    ErrorCase {
        service: "orders-broken",
        per_status: &[("200", 970), ("503", 30)],
        ratio: 0.03,
    },
    // No 5xx series at all: the ratio is 0, not "no data".
    ErrorCase {
        service: "orders-clean",
        per_status: &[("200", 1000)],
        ratio: 0.0,
    },
];

/// A counter's value at the sample of index k, `None` while the series does not exist.
pub type CountAt = fn(i64) -> Option<u64>;

/// A service whose request counters do what `rate()` gets wrong: a label set born inside the
/// window already holding requests, or a reset. Each status's count is a function of the
/// sample's index k (time `T0 + 15 k`), `None` while the series does not exist.
pub struct CounterCase {
    pub service: &'static str,
    pub per_status: &'static [(&'static str, CountAt)],
    /// Requests counted in (`FROM`, `TO`], 5xx and all: the truth the SLI must give.
    pub bad: u64,
    pub all: u64,
}

/// Index of the sample at [`FROM`].
const K_FROM: i64 = (FROM - T0) / STEP;

pub const COUNTER_SERVICES: [CounterCase; 2] = [
    // 2xx grows 100 a step all along: 8000 in the window's 80 steps. A 503 burst lands between
    // two scrapes 15 minutes in, on a status not seen before: the 503 series' first sample is
    // already 60; then 2 more a step for 60 steps. Bad = 60 + 120.
    CounterCase {
        service: "orders-burst",
        per_status: &[("200", burst_ok), ("503", burst_errors)],
        bad: 180,
        all: 8000 + 180,
    },
    // The process restarts 20 minutes in (sample 81): 2xx was 50 a step (2000 in the window
    // before the restart) and is 7 at the first scrape after it, then 50 a step for 39 steps
    // (1957); 500s were 2 a step (80), then 1, then 2 a step (79).
    CounterCase {
        service: "orders-restarted",
        per_status: &[("200", restarted_ok), ("500", restarted_errors)],
        bad: 80 + 79,
        all: 2000 + 1957 + 80 + 79,
    },
];

fn burst_ok(k: i64) -> Option<u64> {
    Some(100 * k as u64)
}

fn burst_errors(k: i64) -> Option<u64> {
    (k >= K_FROM + 20).then(|| 60 + 2 * (k - K_FROM - 20) as u64)
}

/// Sample index of the first scrape after the restart.
const RESTART: i64 = 81;

fn restarted_ok(k: i64) -> Option<u64> {
    Some(if k < RESTART {
        50 * k as u64
    } else {
        7 + 50 * (k - RESTART) as u64
    })
}

fn restarted_errors(k: i64) -> Option<u64> {
    Some(if k < RESTART {
        2 * k as u64
    } else {
        1 + 2 * (k - RESTART) as u64
    })
}

/// A latency histogram whose slow label set is born inside the window: requests of status 200
/// add 10 a step in the first bucket (<= 0.1 s) all along (800 in the window); the 504s'
/// series first appear 20 minutes in with 60 observations in (0.5 s, 1 s], then 1 more a step
/// (40 steps). The true counts in the window per bucket are [`BORN_SLOW_COUNTS`].
pub const BORN_SLOW_SERVICE: &str = "checkout-born-slow";
pub const BORN_SLOW_COUNTS: [u64; 5] = [800, 0, 0, 100, 0];

fn born_slow_fast(k: i64) -> Option<Vec<u64>> {
    Some(vec![10 * k as u64, 0, 0, 0, 0])
}

/// Sample index of the slow label set's first scrape, 20 minutes in.
const SLOW_BORN: i64 = K_FROM + 40;

fn born_slow_slow(k: i64) -> Option<Vec<u64>> {
    (k >= SLOW_BORN).then(|| vec![0, 0, 0, 60 + (k - SLOW_BORN) as u64, 0])
}

/// An autoscaler's spec and how its replicas move.
pub struct HpaCase {
    pub name: &'static str,
    pub min: f64,
    pub max: f64,
    /// Current replicas at a time (Unix seconds).
    pub current: fn(i64) -> f64,
    /// Desired replicas at a time.
    pub desired: fn(i64) -> f64,
    /// Known answers over [`FROM`, `TO`]: peak - min, longest time at max (s), |desired - current| at the end.
    pub scale_out: f64,
    pub time_at_max: f64,
    pub end_gap: f64,
}

pub const HPAS: [HpaCase; 4] = [
    // Rises 2 -> 6 one replica a minute from 15 minutes in, then holds; max 10 never reached.
    HpaCase {
        name: "order",
        min: 2.0,
        max: 10.0,
        current: order_replicas,
        desired: order_replicas,
        scale_out: 4.0,
        time_at_max: 0.0,
        end_gap: 0.0,
    },
    // Jumps to its max of 5 five minutes in and stays there wanting 8: pinned for the whole window.
    HpaCase {
        name: "payment",
        min: 2.0,
        max: 5.0,
        current: payment_replicas,
        desired: payment_desired,
        scale_out: 3.0,
        time_at_max: 1200.0,
        end_gap: 3.0,
    },
    // At its max of 4 for three minutes (20:00 to 23:00), otherwise 1-2.
    HpaCase {
        name: "cart",
        min: 1.0,
        max: 4.0,
        current: cart_replicas,
        desired: cart_replicas,
        scale_out: 3.0,
        time_at_max: 180.0,
        end_gap: 0.0,
    },
    // Never moves from its minimum.
    HpaCase {
        name: "idle",
        min: 2.0,
        max: 10.0,
        current: idle_replicas,
        desired: idle_replicas,
        scale_out: 0.0,
        time_at_max: 0.0,
        end_gap: 0.0,
    },
];

fn order_replicas(t: i64) -> f64 {
    let since = t - (T0 + 900);
    if since < 0 {
        2.0
    } else {
        (3 + since / 60).min(6) as f64
    }
}

fn payment_replicas(t: i64) -> f64 {
    if t < T0 + 300 { 2.0 } else { 5.0 }
}

fn payment_desired(t: i64) -> f64 {
    if t < T0 + 300 { 2.0 } else { 8.0 }
}

fn cart_replicas(t: i64) -> f64 {
    match t - T0 {
        s if s < 900 => 1.0,
        s if s < 1200 => 2.0,
        s if s <= 1380 => 4.0,
        _ => 2.0,
    }
}

fn idle_replicas(_: i64) -> f64 {
    2.0
}

/// A consumer group's lag series and its known answers.
pub struct LagCase {
    pub group: &'static str,
    pub topic: &'static str,
    /// Lag per partition at a time; the SLI sums the partitions.
    pub partitions: &'static [fn(i64) -> f64],
    /// Highest total lag in [`FROM`, `TO`].
    pub max_lag: f64,
    /// Seconds after [`LOAD_END`] until the total is below 1000; `None`: never.
    pub recovery_below_1000: Option<f64>,
}

pub const LAGS: [LagCase; 3] = [
    // Builds to 2500 per partition (5000 total) by the end of load, then drains 750 per
    // partition every 15 s: 3500, 2000, 500 -> below 1000 after 45 s.
    LagCase {
        group: "notification-group",
        topic: "orders",
        partitions: &[notification_lag, notification_lag],
        max_lag: 5000.0,
        recovery_below_1000: Some(45.0),
    },
    // 3000 at the end of load, drained by the next sample.
    LagCase {
        group: "audit-group",
        topic: "orders",
        partitions: &[audit_lag],
        max_lag: 3000.0,
        recovery_below_1000: Some(15.0),
    },
    // Stuck at 12000 and never drains.
    LagCase {
        group: "stuck-group",
        topic: "payments",
        partitions: &[stuck_lag],
        max_lag: 12000.0,
        recovery_below_1000: None,
    },
];

fn notification_lag(t: i64) -> f64 {
    if t <= LOAD_END {
        (2500 * (t - T0) / (LOAD_END - T0)) as f64
    } else {
        (2500 - 750 * ((t - LOAD_END) / STEP)).max(0) as f64
    }
}

fn audit_lag(t: i64) -> f64 {
    if t <= LOAD_END {
        (3000 * (t - T0) / (LOAD_END - T0)) as f64
    } else {
        0.0
    }
}

fn stuck_lag(_: i64) -> f64 {
    12000.0
}

/// A consumer group's time lag as kafka-lag-exporter reports it, and its known answers.
pub struct TimeLagCase {
    pub group: &'static str,
    pub topic: &'static str,
    /// Seconds behind per partition at a time; the SLI takes the maximum.
    pub partitions: &'static [fn(i64) -> f64],
    /// Highest time lag in [`FROM`, `TO`], seconds.
    pub max_seconds: f64,
    /// Seconds after [`LOAD_END`] until the time lag is below 5 s; `None`: never.
    pub recovery_below_5s: Option<f64>,
}

/// kafka-lag-exporter's `kafka_consumergroup_group_lag_seconds` (per partition) and
/// `kafka_consumergroup_group_max_lag_seconds` (per group, the maximum over partitions).
pub const TIME_LAGS: [TimeLagCase; 2] = [
    // Partition 0 falls behind from 1 s to 8 s by the end of load, then catches up 2 s every
    // 15 s: 6, 4 -> below 5 s after 30 s. Partition 1 stays 3 s behind during load.
    TimeLagCase {
        group: "notification-group",
        topic: "orders",
        partitions: &[notification_time_lag_0, notification_time_lag_1],
        max_seconds: 8.0,
        recovery_below_5s: Some(30.0),
    },
    // Two minutes behind and never catching up.
    TimeLagCase {
        group: "stuck-group",
        topic: "payments",
        partitions: &[stuck_time_lag],
        max_seconds: 120.0,
        recovery_below_5s: None,
    },
];

fn notification_time_lag_0(t: i64) -> f64 {
    if t <= LOAD_END {
        1.0 + 7.0 * (t - T0) as f64 / (LOAD_END - T0) as f64
    } else {
        (8.0 - 2.0 * ((t - LOAD_END) / STEP) as f64).max(0.0)
    }
}

fn notification_time_lag_1(t: i64) -> f64 {
    if t <= LOAD_END { 3.0 } else { 0.0 }
}

fn stuck_time_lag(_: i64) -> f64 {
    120.0
}

fn times() -> impl Iterator<Item = i64> + Clone {
    (T0..=END).step_by(STEP as usize)
}

/// The whole dataset as OpenMetrics text.
pub fn openmetrics() -> String {
    let mut om = OpenMetrics::new();
    let histogram = "http_request_duration_seconds";
    for (service, per_step, _) in LATENCY_SERVICES {
        om.histogram(
            histogram,
            &[("service", service), ("status", "200")],
            &BOUNDS,
            &per_step,
            times(),
        );
    }
    for case in &ERROR_SERVICES {
        for (status, per_step) in case.per_status {
            om.histogram(
                histogram,
                &[("service", case.service), ("status", status)],
                &BOUNDS,
                &[*per_step, 0, 0, 0, 0],
                times(),
            );
        }
    }
    let indexed = || times().enumerate().map(|(k, t)| (k as i64, t));
    for case in &COUNTER_SERVICES {
        for (status, count) in case.per_status {
            om.histogram_samples(
                histogram,
                &[("service", case.service), ("status", status)],
                &BOUNDS,
                indexed().filter_map(|(k, t)| count(k).map(|n| (t, vec![n, 0, 0, 0, 0]))),
            );
        }
    }
    for (status, counts) in [
        ("200", born_slow_fast as fn(i64) -> _),
        ("504", born_slow_slow),
    ] {
        om.histogram_samples(
            histogram,
            &[("service", BORN_SLOW_SERVICE), ("status", status)],
            &BOUNDS,
            indexed().filter_map(|(k, t)| counts(k).map(|c| (t, c))),
        );
    }
    for hpa in &HPAS {
        let labels = [
            ("namespace", "ecommerce"),
            ("horizontalpodautoscaler", hpa.name),
        ];
        let series = |f: &dyn Fn(i64) -> f64| times().map(|t| (t, f(t))).collect::<Vec<_>>();
        om.gauge(
            "kube_horizontalpodautoscaler_spec_min_replicas",
            &labels,
            series(&|_| hpa.min),
        );
        om.gauge(
            "kube_horizontalpodautoscaler_spec_max_replicas",
            &labels,
            series(&|_| hpa.max),
        );
        om.gauge(
            "kube_horizontalpodautoscaler_status_current_replicas",
            &labels,
            series(&hpa.current),
        );
        om.gauge(
            "kube_horizontalpodautoscaler_status_desired_replicas",
            &labels,
            series(&hpa.desired),
        );
    }
    for lag in &LAGS {
        for (partition, f) in lag.partitions.iter().enumerate() {
            let partition = partition.to_string();
            om.gauge(
                "kafka_consumergroup_lag",
                &[
                    ("consumergroup", lag.group),
                    ("topic", lag.topic),
                    ("partition", partition.as_str()),
                ],
                times().map(|t| (t, f(t))),
            );
        }
    }
    for lag in &TIME_LAGS {
        for (partition, f) in lag.partitions.iter().enumerate() {
            let partition = partition.to_string();
            om.gauge(
                "kafka_consumergroup_group_lag_seconds",
                &[
                    ("cluster_name", "shop"),
                    ("group", lag.group),
                    ("topic", lag.topic),
                    ("partition", partition.as_str()),
                ],
                times().map(|t| (t, f(t))),
            );
        }
    }
    for lag in &TIME_LAGS {
        om.gauge(
            "kafka_consumergroup_group_max_lag_seconds",
            &[
                ("cluster_name", "shop"),
                ("group", lag.group),
                ("is_simple_consumer", "false"),
            ],
            times().map(|t| (t, lag.partitions.iter().map(|f| f(t)).fold(0.0, f64::max))),
        );
    }
    om.render()
}

/// One Prometheus with [`openmetrics`] per test binary, started on first use; `None` when
/// Prometheus is not installed (a skip message has been printed).
pub fn prometheus() -> Option<&'static TestPrometheus> {
    static SHARED: OnceLock<Option<&'static TestPrometheus>> = OnceLock::new();
    *SHARED
        .get_or_init(|| TestPrometheus::start(&openmetrics()).map(TestPrometheus::share_until_exit))
}

/// Unix seconds as a time.
pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0)
        .single()
        .expect("valid timestamp")
}
