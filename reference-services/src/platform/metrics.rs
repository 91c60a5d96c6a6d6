//! Prometheus metrics of a service: request latency histograms for HTTP and gRPC (the series SLOs
//! are written against) and the business counters the platform documents name
//! (`orders_created_total`, `kafka_events_published_total`, `outbox_pending`, ...).
//!
//! Every series carries a constant `service` label, so one Prometheus query can select a service.

use std::sync::{
    Arc, OnceLock,
    atomic::{AtomicI64, AtomicU64},
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Latency buckets in seconds: fine below the 500 ms objective, coarse above it.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcLabels {
    pub grpc_service: String,
    pub grpc_method: String,
    pub grpc_code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicStatus {
    pub topic: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    pub topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// All metric families of one service process.
pub struct Metrics {
    registry: Registry,
    pub http_duration: Family<HttpLabels, Histogram, fn() -> Histogram>,
    pub grpc_duration: Family<GrpcLabels, Histogram, fn() -> Histogram>,
    pub orders_created: Counter,
    pub payments_processed: Counter,
    pub events_published: Family<TopicStatus, Counter>,
    pub events_consumed: Family<TopicLabels, Counter>,
    pub events_duplicate: Family<TopicLabels, Counter>,
    pub outbox_pending: Gauge,
    pub faults_injected: Family<KindLabels, Counter>,
    pub in_flight: Gauge<i64, AtomicI64>,
    pub ready: Gauge<f64, AtomicU64>,
}

static GLOBAL: OnceLock<Arc<Metrics>> = OnceLock::new();

impl Metrics {
    fn new(service: &str) -> Self {
        let mut registry =
            Registry::with_labels([("service".into(), service.to_string().into())].into_iter());
        let http_duration = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let grpc_duration = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let metrics = Self {
            http_duration,
            grpc_duration,
            orders_created: Counter::default(),
            payments_processed: Counter::default(),
            events_published: Family::default(),
            events_consumed: Family::default(),
            events_duplicate: Family::default(),
            outbox_pending: Gauge::default(),
            faults_injected: Family::default(),
            in_flight: Gauge::default(),
            ready: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method, templated route and status",
            metrics.http_duration.clone(),
        );
        registry.register(
            "grpc_server_handling_seconds",
            "gRPC request latency by service, method and status code",
            metrics.grpc_duration.clone(),
        );
        registry.register(
            "orders_created",
            "Orders accepted (persisted with their outbox event)",
            metrics.orders_created.clone(),
        );
        registry.register(
            "payments_processed",
            "Payments accepted",
            metrics.payments_processed.clone(),
        );
        registry.register(
            "kafka_events_published",
            "Events acknowledged (status=ok) or refused (status=error) by Kafka, by topic",
            metrics.events_published.clone(),
        );
        registry.register(
            "kafka_events_consumed",
            "Events handled by this consumer, by topic",
            metrics.events_consumed.clone(),
        );
        registry.register(
            "kafka_events_duplicate",
            "Redelivered events skipped by event id, by topic",
            metrics.events_duplicate.clone(),
        );
        registry.register(
            "outbox_pending",
            "Outbox rows not yet acknowledged by Kafka",
            metrics.outbox_pending.clone(),
        );
        registry.register(
            "faults_injected",
            "Requests delayed or failed on purpose by fault injection, by kind",
            metrics.faults_injected.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "Requests being served",
            metrics.in_flight.clone(),
        );
        registry.register(
            "service_ready",
            "1 when the last readiness check passed",
            metrics.ready.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }

    /// Sets up the process-wide metrics for `service` (first call wins) and returns them.
    pub fn init(service: &str) -> Arc<Metrics> {
        GLOBAL
            .get_or_init(|| Arc::new(Metrics::new(service)))
            .clone()
    }

    /// The process-wide metrics (initialised as `shop` if no service did it first).
    pub fn global() -> Arc<Metrics> {
        Self::init("shop")
    }

    /// The OpenMetrics text exposition of every series.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_service_label_and_histogram_buckets() {
        let metrics = Metrics::new("order");
        metrics
            .http_duration
            .get_or_create(&HttpLabels {
                method: "GET".into(),
                route: "/health".into(),
                status: "200".into(),
            })
            .observe(0.003);
        metrics.orders_created.inc();
        let text = metrics.encode();
        let bucket = |le: &str| {
            text.lines()
                .find(|l| {
                    l.starts_with("http_request_duration_seconds_bucket{")
                        && l.contains(&format!(r#"le="{le}""#))
                        && l.contains(r#"route="/health""#)
                        && l.contains(r#"service="order""#)
                })
                .and_then(|l| l.rsplit(' ').next())
                .unwrap_or_else(|| panic!("no bucket le={le} in {text}"))
                .to_string()
        };
        // 3 ms lands in the 5 ms bucket and every bucket above it, not in the 1 ms one.
        assert_eq!(bucket("0.005"), "1", "{text}");
        assert_eq!(bucket("+Inf"), "1", "{text}");
        assert_eq!(bucket("0.001"), "0", "{text}");
        assert!(text.contains("orders_created_total"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
