//! The server's latency per route over a run, next to the client's per transaction: the gap
//! between them is the network, queueing in front of the server and the client's own time. A
//! report that only has the client's side cannot say whether a slow p95 is the service or the
//! way to it.
//!
//! The server's side is its `http_request_duration_seconds` histogram grouped by `method` and
//! `route` (the router's template, e.g. `/api/v1/products/{id}`); a transaction is matched by its
//! method and the path pattern its scenario requests (`/api/v1/products/*`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_http_query::response::Data;
use reports::{Percentiles, Report, RouteLatency, ServerSide};

use super::prometheus::PrometheusSource;
use super::{OPS_ROUTES, SourceError};

/// One route as the server measured it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RouteFigures {
    pub method: String,
    pub route: String,
    pub latency: Percentiles,
}

/// A transaction of the run: its name, method and path pattern (`*` segments).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requested {
    pub transaction: String,
    pub method: String,
    pub path: String,
}

/// The PromQL of quantile `q` per method and route for series `selector` over `range`.
pub fn quantile_query(q: f64, selector: &str, range: Duration) -> String {
    let extra = if selector.trim().is_empty() {
        String::new()
    } else {
        format!("{},", selector.trim().trim_end_matches(','))
    };
    format!(
        "histogram_quantile({q}, sum by (method, route, le) (rate(http_request_duration_seconds_bucket{{{extra}route!~\"{OPS_ROUTES}\"}}[{}s])))",
        range.as_secs().max(1)
    )
}

impl PrometheusSource {
    /// p50, p95 and p99 of every route of the series `selector` (PromQL label matchers, e.g.
    /// `service="api-gateway"`) over `from..to`, and the queries asked.
    pub async fn route_latency(
        &self,
        selector: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<(Vec<RouteFigures>, Vec<String>), SourceError> {
        let range = (to - from).to_std().unwrap_or_default();
        let mut routes: Vec<RouteFigures> = Vec::new();
        let mut queries = Vec::new();
        for q in [0.5, 0.95, 0.99] {
            let query = quantile_query(q, selector, range);
            let result = self.instant(&query, to.timestamp()).await?;
            let Data::Vector(series) = result.data() else {
                return Err(SourceError::rejected(format!(
                    "Prometheus answered `{query}` with something other than an instant vector"
                )));
            };
            for one in series {
                let labels = one.metric();
                let (Some(method), Some(route)) = (labels.get("method"), labels.get("route"))
                else {
                    continue;
                };
                let value = one.sample().value();
                if value.is_nan() {
                    continue;
                }
                let at = match routes
                    .iter()
                    .position(|r| &r.method == method && &r.route == route)
                {
                    Some(at) => at,
                    None => {
                        routes.push(RouteFigures {
                            method: method.clone(),
                            route: route.clone(),
                            ..RouteFigures::default()
                        });
                        routes.len() - 1
                    }
                };
                let slot = match q {
                    0.5 => &mut routes[at].latency.p50_ms,
                    0.95 => &mut routes[at].latency.p95_ms,
                    _ => &mut routes[at].latency.p99_ms,
                };
                *slot = Some(value * 1000.0);
            }
            queries.push(query);
        }
        Ok((routes, queries))
    }
}

/// Sets each requested transaction's client percentiles (from `report`) next to the server's
/// for the route it hits. A transaction whose steps hit several routes is matched on its first.
pub fn compare(
    report: &Report,
    requested: &[Requested],
    routes: &[RouteFigures],
    source: String,
    queries: Vec<String>,
) -> ServerSide {
    let mut side = ServerSide {
        source,
        queries,
        ..ServerSide::default()
    };
    for transaction in &report.transactions {
        if side
            .routes
            .iter()
            .any(|r| r.transaction == transaction.name)
        {
            continue;
        }
        let route = requested
            .iter()
            .filter(|r| r.transaction == transaction.name)
            .find_map(|r| {
                routes.iter().find(|route| {
                    route.method.eq_ignore_ascii_case(&r.method)
                        && matches_route(&r.path, &route.route)
                })
            });
        let Some(route) = route else {
            side.unmatched.push(transaction.name.clone());
            continue;
        };
        let client = transaction
            .latency
            .map_or_else(Percentiles::default, |l| Percentiles {
                p50_ms: Some(l.p50_ms),
                p95_ms: Some(l.p95_ms),
                p99_ms: Some(l.p99_ms),
            });
        side.routes.push(RouteLatency {
            transaction: transaction.name.clone(),
            method: route.method.clone(),
            route: route.route.clone(),
            client,
            server: route.latency,
            gap_p95_ms: client.p95_ms.zip(route.latency.p95_ms).map(|(c, s)| c - s),
        });
    }
    side
}

/// Whether a path pattern (`*` segments) hits a route template (`{id}`, `:id` or `*` segments,
/// as routers write them).
pub fn matches_route(pattern: &str, route: &str) -> bool {
    let wild = |s: &str| s == "*" || s.starts_with(':') || (s.starts_with('{') && s.ends_with('}'));
    let a: Vec<&str> = pattern.trim_end_matches('/').split('/').collect();
    let b: Vec<&str> = route.trim_end_matches('/').split('/').collect();
    a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x == y || wild(x) || wild(y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_route_templates_segment_by_segment() {
        assert!(matches_route("/api/v1/products/*", "/api/v1/products/{id}"));
        assert!(matches_route("/api/v1/products/17", "/api/v1/products/:id"));
        assert!(!matches_route("/api/v1/products/*", "/api/v1/products"));
        assert!(!matches_route(
            "/api/v1/products/search",
            "/api/v1/orders/{id}"
        ));
        assert!(matches_route("/api/v1/cart/", "/api/v1/cart"));
    }

    #[test]
    fn the_selector_narrows_the_series_and_probes_stay_out() {
        let q = quantile_query(0.95, "service=\"api-gateway\"", Duration::from_secs(60));
        assert_eq!(
            q,
            "histogram_quantile(0.95, sum by (method, route, le) (rate(http_request_duration_seconds_bucket{service=\"api-gateway\",route!~\"/health|/ready|/metrics\"}[60s])))"
        );
        assert!(quantile_query(0.5, " ", Duration::ZERO).contains("{route!~"));
    }

    #[test]
    fn transactions_meet_their_routes_and_the_gap_is_client_minus_server() {
        use crate::testing::report::{TransactionSpec, run_report, spread};
        let report = run_report(
            Utc::now(),
            10,
            &[
                TransactionSpec::new("get_product", spread(100, 10_000, 30_000), 0),
                TransactionSpec::new("mystery", vec![5_000], 0),
            ],
        );
        let requested = [
            Requested {
                transaction: "get_product".into(),
                method: "GET".into(),
                path: "/api/v1/products/*".into(),
            },
            Requested {
                transaction: "mystery".into(),
                method: "GET".into(),
                path: "/nowhere".into(),
            },
        ];
        let routes = [
            RouteFigures {
                method: "POST".into(),
                route: "/api/v1/products/{id}".into(),
                latency: Percentiles::default(),
            },
            RouteFigures {
                method: "GET".into(),
                route: "/api/v1/products/{id}".into(),
                latency: Percentiles {
                    p50_ms: Some(15.0),
                    p95_ms: Some(20.0),
                    p99_ms: Some(24.0),
                },
            },
        ];
        let side = compare(&report, &requested, &routes, "test".into(), vec![]);
        assert_eq!(side.unmatched, ["mystery"]);
        let row = &side.routes[0];
        assert_eq!(
            (row.method.as_str(), row.route.as_str()),
            ("GET", "/api/v1/products/{id}")
        );
        let client_p95 = row.client.p95_ms.unwrap();
        assert!((row.gap_p95_ms.unwrap() - (client_p95 - 20.0)).abs() < 1e-9);
    }
}
