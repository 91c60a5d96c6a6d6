//! Prometheus metrics of a service: request latency histograms for HTTP and gRPC (the series SLOs
//! are written against) and the business counters the platform documents name
//! (`orders_created_total`, `kafka_events_published_total`, `outbox_pending`, ...).
//!
//! Every series carries a constant `service` label, so one Prometheus query can select a service.
//!
//! The HTTP latency series of every route a service serves are created at zero when it starts,
//! for the success status and each server error the route can answer ([`HttpRoute`]), as
//! Prometheus advises: a series that first appears with a burst already in it shows no increase
//! to `rate()`, so a service's first 503s would be invisible to dashboards and alerts.
//!
//! Label values come from bounded sets only ([`method_label`], [`grpc_labels`], and the route as
//! the router templated it, else `unmatched`): a client sending random paths or methods must not
//! be able to create series without end.

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

/// An outbound gRPC call: the peer's service and the method.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClientLabels {
    pub grpc_service: String,
    pub grpc_method: String,
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
pub struct DependencyLabels {
    pub dependency: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

/// The route label of a request no route matched, and the gRPC labels of a call to no service.
pub const UNMATCHED: &str = "unmatched";

/// The method label: one of the standard methods, else `other` (extension methods are unbounded).
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The labels of a gRPC call to `path` (`/package.Service/Method`) that ended with `code`.
/// `matched` says whether the path reached a served service; a call to no service is labelled
/// [`UNMATCHED`], and one to a method the service does not have (`UNIMPLEMENTED`) keeps the
/// service but not the method, since both are whatever the client made up.
pub fn grpc_labels(matched: bool, path: &str, code: tonic::Code) -> GrpcLabels {
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("", path));
    let (service, method) = match (matched, code) {
        (false, _) => (UNMATCHED, UNMATCHED),
        (true, tonic::Code::Unimplemented) => (service, "unimplemented"),
        (true, _) => (service, method),
    };
    GrpcLabels {
        grpc_service: service.to_string(),
        grpc_method: method.to_string(),
        grpc_code: format!("{code:?}"),
    }
}

/// Server errors every route behind the fault-injection middleware can answer: 503 from an
/// injected fault or an unavailable dependency, 500 from an internal error.
pub const SERVER_ERRORS: [u16; 2] = [500, 503];

/// An HTTP route a service serves, as the latency histogram labels it (the templated route of
/// the router), with the status it answers on success.
#[derive(Clone, Copy, Debug)]
pub struct HttpRoute {
    pub method: &'static str,
    pub route: &'static str,
    pub success: u16,
}

impl HttpRoute {
    pub const fn new(method: &'static str, route: &'static str, success: u16) -> Self {
        Self {
            method,
            route,
            success,
        }
    }
}

/// The ops routes every service serves (outside fault injection): `/ready` answers 503 while a
/// dependency is down.
const OPS_ROUTES: [(HttpRoute, &[u16]); 3] = [
    (HttpRoute::new("GET", "/health", 200), &[]),
    (HttpRoute::new("GET", "/ready", 200), &[503]),
    (HttpRoute::new("GET", "/metrics", 200), &[]),
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// All metric families of one service process.
pub struct Metrics {
    registry: Registry,
    pub http_duration: Family<HttpLabels, Histogram, fn() -> Histogram>,
    pub grpc_duration: Family<GrpcLabels, Histogram, fn() -> Histogram>,
    /// Outbound gRPC calls (see [`super::outbound`]).
    pub grpc_client_duration: Family<ClientLabels, Histogram, fn() -> Histogram>,
    pub orders_created: Counter,
    pub payments_processed: Counter,
    pub events_published: Family<TopicStatus, Counter>,
    pub events_consumed: Family<TopicLabels, Counter>,
    pub events_duplicate: Family<TopicLabels, Counter>,
    pub outbox_pending: Gauge,
    pub faults_injected: Family<KindLabels, Counter>,
    pub in_flight: Gauge<i64, AtomicI64>,
    pub ready: Gauge<f64, AtomicU64>,
    pub dependency_up: Family<DependencyLabels, Gauge>,
    /// Auth: password hashes (Argon2) being computed now; never above the hashing bound.
    pub password_hashes_in_flight: Gauge,
    /// Auth: sign-ins refused with 429, by kind (`account`, `address`, `busy`).
    pub auth_throttled: Family<KindLabels, Counter>,
    /// Gateway: bearer tokens verified, by where the answer came from (`cache`, `auth`).
    pub gateway_token_checks: Family<KindLabels, Counter>,
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
            grpc_client_duration: Family::new_with_constructor(
                latency_histogram as fn() -> Histogram,
            ),
            orders_created: Counter::default(),
            payments_processed: Counter::default(),
            events_published: Family::default(),
            events_consumed: Family::default(),
            events_duplicate: Family::default(),
            outbox_pending: Gauge::default(),
            faults_injected: Family::default(),
            in_flight: Gauge::default(),
            ready: Gauge::default(),
            dependency_up: Family::default(),
            password_hashes_in_flight: Gauge::default(),
            auth_throttled: Family::default(),
            gateway_token_checks: Family::default(),
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
            "grpc_client_handling_seconds",
            "Outbound gRPC call latency by peer service and method",
            metrics.grpc_client_duration.clone(),
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
        registry.register(
            "dependency_up",
            "1 when the dependency passed the last readiness check, else 0 (optional ones too: \
             Kafka behind an outbox shows here while the service stays ready)",
            metrics.dependency_up.clone(),
        );
        registry.register(
            "password_hashes_in_flight",
            "Password hashes being computed now (auth; bounded by AUTH_HASH_PERMITS)",
            metrics.password_hashes_in_flight.clone(),
        );
        registry.register(
            "auth_throttled",
            "Sign-ins refused with 429 by the auth service, by kind (account, address, busy)",
            metrics.auth_throttled.clone(),
        );
        registry.register(
            "gateway_token_checks",
            "Bearer tokens the gateway verified, by where the answer came from (kind: cache, auth)",
            metrics.gateway_token_checks.clone(),
        );
        registry.register_collector(Box::new(super::process::ProcessCpu));
        Self {
            registry,
            ..metrics
        }
    }

    /// Creates at zero the latency series of each route for its success status, the
    /// [`SERVER_ERRORS`] and `more_statuses` (server errors only this service answers, e.g. the
    /// gateway's 504 when a backend times out). Client errors (4xx) are not pre-created: they
    /// are not failures of the service, and each status multiplies the histogram's series.
    pub fn declare_http_routes(&self, routes: &[HttpRoute], more_statuses: &[u16]) {
        for route in routes {
            let statuses = std::iter::once(route.success)
                .chain(SERVER_ERRORS)
                .chain(more_statuses.iter().copied());
            self.declare(route, statuses);
        }
    }

    /// Creates the ops routes' series at zero (every service serves them).
    pub fn declare_ops_routes(&self) {
        for (route, more) in OPS_ROUTES {
            self.declare(
                &route,
                std::iter::once(route.success).chain(more.iter().copied()),
            );
        }
    }

    fn declare(&self, route: &HttpRoute, statuses: impl Iterator<Item = u16>) {
        for status in statuses {
            // Creating the series is enough: a new histogram exposes every bucket at 0.
            drop(self.http_duration.get_or_create(&HttpLabels {
                method: route.method.to_string(),
                route: route.route.to_string(),
                status: status.to_string(),
            }));
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

    #[test]
    fn labels_come_from_bounded_sets() {
        use axum::http::Method;
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        let served = grpc_labels(true, "/shop.ProductService/GetProduct", tonic::Code::Ok);
        assert_eq!(
            (served.grpc_service.as_str(), served.grpc_method.as_str()),
            ("shop.ProductService", "GetProduct")
        );
        let made_up = grpc_labels(true, "/shop.ProductService/x1", tonic::Code::Unimplemented);
        assert_eq!(made_up.grpc_method, "unimplemented");
        let nowhere = grpc_labels(false, "/a.B/c", tonic::Code::Unimplemented);
        assert_eq!(
            (nowhere.grpc_service.as_str(), nowhere.grpc_method.as_str()),
            (UNMATCHED, UNMATCHED)
        );
    }

    #[test]
    fn declared_routes_are_exposed_at_zero_for_success_and_server_errors() {
        let metrics = Metrics::new("api-gateway");
        metrics.declare_ops_routes();
        metrics.declare_http_routes(&[HttpRoute::new("POST", "/api/v1/orders", 201)], &[504]);
        let text = metrics.encode();
        let count = |route: &str, status: &str| {
            text.lines()
                .find(|l| {
                    l.starts_with("http_request_duration_seconds_count{")
                        && l.contains(&format!(r#"route="{route}""#))
                        && l.contains(&format!(r#"status="{status}""#))
                })
                .map(|l| l.rsplit(' ').next().unwrap_or_default().to_string())
        };
        for status in ["201", "500", "503", "504"] {
            assert_eq!(
                count("/api/v1/orders", status).as_deref(),
                Some("0"),
                "{text}"
            );
        }
        assert_eq!(count("/ready", "503").as_deref(), Some("0"), "{text}");
        assert_eq!(
            count("/api/v1/orders", "404"),
            None,
            "client errors are not pre-created"
        );
        assert_eq!(count("/health", "503"), None, "/health never answers 503");
    }
}
