//! Analytics service: order statistics per minute, computed as a stream over the
//! `order.created` events on Kafka topic `orders` and published to `analytics-results`.
//!
//! Windows are one-minute tumbling windows by event time (when the order was created, not when
//! the event arrived), so a consumer that lags or restarts reports the same minutes. A window is
//! closed by a watermark that trails the latest event time by [`ALLOWED_LATENESS_MS`]; an event
//! for an already closed window is counted as late and dropped rather than reopening a published
//! result. When no event arrives for [`IDLE_FLUSH`], open windows are closed anyway so a quiet
//! stream still reports. The window logic is the pure [`TumblingWindows`]; the service around it
//! only feeds events in and publishes what closes.
//!
//! Open windows live in memory: a restart loses at most the minute or so not yet closed, which
//! is the usual trade of approximate stream analytics (orders themselves are never at risk).

use std::{
    collections::{BTreeMap, HashSet, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Result;
use axum::{Json, Router, extract::State, routing::get};
use chrono::{DateTime, SecondsFormat};
use rdkafka::producer::FutureProducer;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::platform::{
    events::{self, Envelope, TOPIC_ANALYTICS_RESULTS, TOPIC_ORDERS},
    http::Runtime,
    metrics::{HttpRoute, Metrics, TopicLabels},
    shutdown::Shutdown,
};

pub const CONSUMER_GROUP: &str = "analytics-group";
/// Window length.
pub const WINDOW_MS: i64 = 60_000;
/// How far the watermark trails the latest event time.
pub const ALLOWED_LATENESS_MS: i64 = 10_000;
/// Open windows are closed after this long without any event.
pub const IDLE_FLUSH: Duration = Duration::from_secs(70);
/// How many published windows the read API keeps.
const HISTORY: usize = 100;
/// Event type of a published window.
pub const WINDOW_EVENT: &str = "analytics.window";

/// One order as the windows see it.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderSample {
    pub event_id: String,
    /// Event time, milliseconds since the Unix epoch.
    pub at_ms: i64,
    pub user_id: String,
    pub total_cents: i64,
    pub items: i64,
}

impl OrderSample {
    /// The sample of an `order.created` event; `None` for other events.
    pub fn from_envelope(envelope: &Envelope) -> Option<Self> {
        if envelope.event_type != "order.created" {
            return None;
        }
        let data = &envelope.data;
        let items = data["items"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        Some(Self {
            event_id: envelope.event_id.clone(),
            at_ms: envelope.occurred_at,
            user_id: data["user_id"].as_str().unwrap_or_default().to_string(),
            total_cents: data["total_cents"].as_i64()?,
            items: items.iter().filter_map(|i| i["quantity"].as_i64()).sum(),
        })
    }
}

/// The statistics of one closed window, as published.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowSummary {
    /// RFC 3339, inclusive.
    pub window_start: String,
    /// RFC 3339, exclusive.
    pub window_end: String,
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    pub order_count: i64,
    pub total_revenue_cents: i64,
    /// The same amount in currency units.
    pub total_revenue: f64,
    pub total_items: i64,
    pub unique_users: i64,
    /// Average order value in currency units, rounded to the cent.
    pub average_order_value: f64,
}

/// What became of one sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Counted,
    /// Same event id seen before in its window (a redelivery).
    Duplicate,
    /// Its window was already closed; dropped.
    Late,
}

#[derive(Default)]
struct OpenWindow {
    event_ids: HashSet<String>,
    users: HashSet<String>,
    order_count: i64,
    revenue_cents: i64,
    items: i64,
}

/// One-minute tumbling windows by event time, closed by a watermark.
#[derive(Default)]
pub struct TumblingWindows {
    open: BTreeMap<i64, OpenWindow>,
    max_event_ms: Option<i64>,
    /// Every window ending at or before this instant is closed; events before it are late.
    closed_until: Option<i64>,
    late_events: u64,
}

impl TumblingWindows {
    /// Adds a sample and returns what became of it and the windows it closed (oldest first).
    pub fn add(&mut self, sample: OrderSample) -> (Admission, Vec<WindowSummary>) {
        if self
            .closed_until
            .is_some_and(|closed| sample.at_ms < closed)
        {
            self.late_events += 1;
            return (Admission::Late, Vec::new());
        }
        let window = self.open.entry(window_start(sample.at_ms)).or_default();
        if !window.event_ids.insert(sample.event_id) {
            return (Admission::Duplicate, Vec::new());
        }
        window.order_count += 1;
        window.revenue_cents += sample.total_cents;
        window.items += sample.items;
        window.users.insert(sample.user_id);
        self.max_event_ms = Some(
            self.max_event_ms
                .map_or(sample.at_ms, |m| m.max(sample.at_ms)),
        );
        let closed = self
            .watermark()
            .map(|w| self.close_until(w))
            .unwrap_or_default();
        (Admission::Counted, closed)
    }

    /// Latest event time minus the allowed lateness.
    pub fn watermark(&self) -> Option<i64> {
        self.max_event_ms.map(|m| m - ALLOWED_LATENESS_MS)
    }

    /// Closes every open window regardless of the watermark (the stream went quiet).
    pub fn flush(&mut self) -> Vec<WindowSummary> {
        match self.open.last_key_value() {
            Some((&last_start, _)) => self.close_until(last_start + WINDOW_MS),
            None => Vec::new(),
        }
    }

    pub fn has_open_windows(&self) -> bool {
        !self.open.is_empty()
    }

    pub fn late_events(&self) -> u64 {
        self.late_events
    }

    /// Closes the windows that end at or before `instant`.
    fn close_until(&mut self, instant: i64) -> Vec<WindowSummary> {
        let boundary = window_start(instant);
        self.closed_until = Some(self.closed_until.map_or(boundary, |c| c.max(boundary)));
        let still_open = self.open.split_off(&(boundary - WINDOW_MS + 1));
        let closed = std::mem::replace(&mut self.open, still_open);
        closed
            .into_iter()
            .map(|(start, w)| summarize(start, &w))
            .collect()
    }
}

/// Start of the window holding instant `at_ms`.
pub fn window_start(at_ms: i64) -> i64 {
    at_ms.div_euclid(WINDOW_MS) * WINDOW_MS
}

fn summarize(start: i64, w: &OpenWindow) -> WindowSummary {
    let average_cents = if w.order_count == 0 {
        0
    } else {
        (w.revenue_cents as f64 / w.order_count as f64).round() as i64
    };
    WindowSummary {
        window_start: rfc3339(start),
        window_end: rfc3339(start + WINDOW_MS),
        window_start_ms: start,
        window_end_ms: start + WINDOW_MS,
        order_count: w.order_count,
        total_revenue_cents: w.revenue_cents,
        total_revenue: w.revenue_cents as f64 / 100.0,
        total_items: w.items,
        unique_users: w.users.len() as i64,
        average_order_value: average_cents as f64 / 100.0,
    }
}

fn rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Runs the analytics consumer, its idle flush and its read API until shutdown.
pub async fn run(mut rt: Runtime) -> Result<()> {
    let bootstrap = rt.config.require_kafka()?;
    let consumer = events::consumer(bootstrap, CONSUMER_GROUP, &[TOPIC_ORDERS])?;
    let producer = events::producer(bootstrap)?;
    rt.readiness
        .add("kafka", events::metadata_check(producer.clone()));

    let analytics = Analytics::new(producer.clone(), rt.metrics.clone());
    let consuming = analytics.clone();
    rt.shutdown.spawn(events::consume(
        consumer,
        rt.metrics.clone(),
        rt.shutdown.clone(),
        move |_topic, envelope| {
            let analytics = consuming.clone();
            async move { analytics.handle(&envelope).await }
        },
    ));
    rt.shutdown
        .spawn(flush_when_idle(analytics.clone(), rt.shutdown.clone()));
    let router = Router::new()
        .route("/v1/windows", get(windows))
        .with_state(analytics);
    rt.metrics
        .declare_http_routes(&[HttpRoute::new("GET", "/v1/windows", 200)], &[]);
    let served = rt.serve(router).await;
    events::flush(&producer);
    served
}

/// The running aggregation: windows, results waiting for Kafka, and what was published.
#[derive(Clone)]
struct Analytics {
    state: Arc<Mutex<AnalyticsState>>,
    /// One publisher at a time, so results go out once and in order.
    publishing: Arc<tokio::sync::Mutex<()>>,
    producer: FutureProducer,
    metrics: Arc<Metrics>,
}

struct AnalyticsState {
    windows: TumblingWindows,
    unpublished: VecDeque<WindowSummary>,
    published: VecDeque<WindowSummary>,
    last_event: Instant,
}

impl Analytics {
    fn new(producer: FutureProducer, metrics: Arc<Metrics>) -> Self {
        let state = AnalyticsState {
            windows: TumblingWindows::default(),
            unpublished: VecDeque::new(),
            published: VecDeque::new(),
            last_event: Instant::now(),
        };
        Self {
            state: Arc::new(Mutex::new(state)),
            publishing: Arc::default(),
            producer,
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AnalyticsState> {
        self.state.lock().expect("analytics state lock poisoned")
    }

    /// Feeds one event in and publishes the windows it closed. A failed publish fails the event,
    /// so the consumer retries it: the event is then a duplicate and the publish is retried.
    async fn handle(&self, envelope: &Envelope) -> Result<()> {
        if let Some(sample) = OrderSample::from_envelope(envelope) {
            let admission = {
                let mut state = self.lock();
                state.last_event = Instant::now();
                let (admission, closed) = state.windows.add(sample);
                state.unpublished.extend(closed);
                admission
            };
            match admission {
                Admission::Counted => {}
                Admission::Duplicate => {
                    self.metrics
                        .events_duplicate
                        .get_or_create(&TopicLabels {
                            topic: TOPIC_ORDERS.to_string(),
                        })
                        .inc();
                }
                Admission::Late => {
                    tracing::info!(event_id = %envelope.event_id, "late order event dropped");
                }
            }
        }
        self.publish_pending().await
    }

    /// Closes the open windows if no event came for [`IDLE_FLUSH`].
    async fn flush_if_idle(&self) -> Result<()> {
        {
            let mut state = self.lock();
            if state.last_event.elapsed() < IDLE_FLUSH || !state.windows.has_open_windows() {
                return Ok(());
            }
            let flushed = state.windows.flush();
            state.unpublished.extend(flushed);
        }
        self.publish_pending().await
    }

    /// Publishes closed windows in order; stops at the first failure (they stay queued).
    async fn publish_pending(&self) -> Result<()> {
        let _one_at_a_time = self.publishing.lock().await;
        loop {
            let Some(window) = self.lock().unpublished.front().cloned() else {
                return Ok(());
            };
            let envelope = Envelope::new(WINDOW_EVENT, serde_json::to_value(&window)?);
            let key = window.window_start.clone();
            events::publish(
                &self.producer,
                &self.metrics,
                TOPIC_ANALYTICS_RESULTS,
                &key,
                &envelope,
            )
            .await?;
            tracing::info!(window = %window.window_start, orders = window.order_count, "window published");
            let mut state = self.lock();
            state.unpublished.pop_front();
            if state.published.len() == HISTORY {
                state.published.pop_front();
            }
            state.published.push_back(window);
        }
    }
}

/// Checks every few seconds whether the stream went quiet.
async fn flush_when_idle(analytics: Analytics, shutdown: Shutdown) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = analytics.flush_if_idle().await {
            tracing::warn!(error = %format!("{e:#}"), "publishing idle windows failed; will retry");
        }
    }
}

/// `GET /v1/windows`: the last published windows (oldest first) and the late-event count.
async fn windows(State(analytics): State<Analytics>) -> Json<Value> {
    let state = analytics.lock();
    Json(json!({
        "windows": state.published,
        "pending": state.unpublished.len(),
        "late_events": state.windows.late_events(),
        "watermark": state.windows.watermark().map(rfc3339),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-01-01T00:00:00Z.
    const T0: i64 = 1_704_067_200_000;

    fn sample(id: &str, at_ms: i64, user: &str, total_cents: i64, items: i64) -> OrderSample {
        OrderSample {
            event_id: id.into(),
            at_ms,
            user_id: user.into(),
            total_cents,
            items,
        }
    }

    #[test]
    fn windows_are_aligned_minutes() {
        assert_eq!(window_start(T0), T0);
        assert_eq!(window_start(T0 + 59_999), T0);
        assert_eq!(window_start(T0 + 60_000), T0 + 60_000);
        assert_eq!(window_start(-1), -60_000, "before the epoch still floors");
    }

    #[test]
    fn a_window_closes_when_the_watermark_passes_its_end() {
        let mut w = TumblingWindows::default();
        assert_eq!(w.add(sample("a", T0 + 1_000, "u1", 1000, 2)).1, vec![]);
        assert_eq!(w.add(sample("b", T0 + 59_999, "u2", 2001, 1)).1, vec![]);
        // Watermark T0+59_999: the first minute [T0, T0+60s) is not yet closed.
        assert_eq!(w.add(sample("c", T0 + 69_999, "u1", 500, 1)).1, vec![]);
        // Watermark T0+60_000, the window's end: closed.
        let (admission, closed) = w.add(sample("d", T0 + 70_000, "u1", 500, 1));
        assert_eq!(admission, Admission::Counted);
        assert_eq!(closed.len(), 1);
        let first = &closed[0];
        assert_eq!(first.window_start, "2024-01-01T00:00:00Z");
        assert_eq!(first.window_end, "2024-01-01T00:01:00Z");
        assert_eq!(first.order_count, 2);
        assert_eq!(first.total_revenue_cents, 3001);
        assert_eq!(first.total_revenue, 30.01);
        assert_eq!(first.total_items, 3);
        assert_eq!(first.unique_users, 2);
        assert_eq!(
            first.average_order_value, 15.01,
            "3001 / 2 = 1500.5 cents, rounded"
        );
        assert!(w.has_open_windows(), "the second minute is still open");
    }

    #[test]
    fn late_events_are_counted_and_dropped_but_allowed_lateness_is_honoured() {
        let mut w = TumblingWindows::default();
        w.add(sample("a", T0 + 30_000, "u1", 100, 1));
        // 65 s: watermark 55 s, so an event at 50 s (first minute, still open) is on time.
        w.add(sample("b", T0 + 65_000, "u1", 100, 1));
        assert_eq!(
            w.add(sample("c", T0 + 50_000, "u2", 100, 1)).0,
            Admission::Counted
        );
        let closed = w.add(sample("d", T0 + 70_000, "u1", 100, 1)).1;
        assert_eq!(closed[0].order_count, 2, "a and c");
        assert_eq!(
            w.add(sample("e", T0 + 59_000, "u3", 100, 1)).0,
            Admission::Late
        );
        assert_eq!(w.late_events(), 1);
    }

    #[test]
    fn redeliveries_count_once() {
        let mut w = TumblingWindows::default();
        assert_eq!(w.add(sample("a", T0, "u1", 100, 1)).0, Admission::Counted);
        assert_eq!(w.add(sample("a", T0, "u1", 100, 1)).0, Admission::Duplicate);
        let flushed = w.flush();
        assert_eq!(flushed[0].order_count, 1);
        assert_eq!(flushed[0].total_revenue_cents, 100);
    }

    #[test]
    fn a_jump_in_time_closes_every_earlier_window_in_order() {
        let mut w = TumblingWindows::default();
        w.add(sample("a", T0, "u1", 100, 1));
        w.add(sample("b", T0 + 60_000, "u1", 200, 1));
        assert!(w.add(sample("c", T0 + 65_000, "u1", 300, 1)).1.is_empty());
        let closed = w.add(sample("d", T0 + 10 * 60_000, "u1", 400, 1)).1;
        let starts: Vec<i64> = closed.iter().map(|s| s.window_start_ms).collect();
        assert_eq!(starts, vec![T0, T0 + 60_000]);
        assert_eq!(closed[1].order_count, 2);
    }

    #[test]
    fn flush_closes_everything_and_later_events_for_it_are_late() {
        let mut w = TumblingWindows::default();
        w.add(sample("a", T0 + 5_000, "u1", 100, 1));
        w.add(sample("b", T0 + 65_000, "u1", 100, 1));
        let flushed = w.flush();
        assert_eq!(flushed.len(), 2);
        assert!(!w.has_open_windows());
        assert_eq!(
            w.add(sample("c", T0 + 100_000, "u1", 100, 1)).0,
            Admission::Late
        );
        assert_eq!(
            w.add(sample("d", T0 + 120_000, "u1", 100, 1)).0,
            Admission::Counted
        );
        assert_eq!(w.flush().len(), 1);
        assert!(w.flush().is_empty());
    }

    #[test]
    fn samples_come_from_order_created_events_only() {
        let mut created = Envelope::new(
            "order.created",
            json!({"user_id": "u1", "total_cents": 700,
                   "items": [{"product_id": 1, "quantity": 3}, {"product_id": 2, "quantity": 4}]}),
        );
        created.occurred_at = T0;
        let s = OrderSample::from_envelope(&created).unwrap();
        assert_eq!(
            (s.at_ms, s.total_cents, s.items, s.user_id.as_str()),
            (T0, 700, 7, "u1")
        );
        let paid = Envelope::new("order.paid", json!({"total_cents": 700}));
        assert!(OrderSample::from_envelope(&paid).is_none());
    }
}
