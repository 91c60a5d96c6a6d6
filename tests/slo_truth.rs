//! The SLO gate against the truth on the embedded stack: good product requests, a burst of
//! injected 503s, good requests again; the gateway's error ratio as the slo crate measures it
//! through the stack's Prometheus must be the client's own count of 503s over all requests.
//!
//! This is the case that read 0.00 % with `rate()`: a status seen for the first time inside the
//! window. The services now create their series at zero, and the gate counts a series born
//! inside the window from zero anyway; this test checks the whole path end to end.

mod common;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{eventually, start_stack};
use slo::{CheckContext, Sources, Window, sources::PrometheusSource};

/// Requests before and after the burst, and in it (the figures of the issue).
const QUIET: usize = 300;
const BURST: usize = 60;
const ROUTE: &str = "/api/v1/products/{id}";

/// The gateway's error-ratio SLO on the product-detail route, counted in 2 s steps.
const SLOS: &str = r#"apiVersion: shakedown/v1
kind: SLOSet
metadata: {name: truth}
defaults: {step: 2s}
slos:
  - name: product-detail-errors
    sli:
      error_ratio:
        selector: 'service="api-gateway", route="/api/v1/products/{id}"'
    objective: {lt: 1%}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_burst_on_a_fresh_status_is_counted_by_the_error_ratio_slo() {
    if shop::stack::prometheus::find_on_path().is_none() {
        slo::testing::missing_tool("prometheus", "scripts/setup.sh installs it");
        return;
    }
    let stack = start_stack(true).await;
    let prometheus = stack
        .prometheus_url()
        .expect("the stack runs Prometheus")
        .to_string();
    let gateway = stack.gateway_url().to_string();
    let product_admin = stack
        .endpoint("product")
        .expect("product")
        .admin_url
        .clone();
    let http = reqwest::Client::new();

    // A fresh gateway already exposes the route's 503 series, at zero.
    let metrics = http
        .get(format!("{gateway}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let fresh_503 = metrics.lines().find(|l| {
        l.starts_with("http_request_duration_seconds_count{")
            && l.contains(&format!("route=\"{ROUTE}\""))
            && l.contains("status=\"503\"")
    });
    assert_eq!(
        fresh_503.and_then(|l| l.rsplit(' ').next()),
        Some("0"),
        "{metrics}"
    );

    // The window starts once Prometheus holds the route's series, before the first request.
    let route_total = format!(
        "sum(http_request_duration_seconds_count{{service=\"api-gateway\", route=\"{ROUTE}\"}})"
    );
    eventually(Duration::from_secs(30), || async {
        instant(&prometheus, &route_total).await.map(|_| ())
    })
    .await
    .expect("Prometheus scrapes the gateway");
    let from = Utc::now();

    // Each phase ends once Prometheus has scraped it (its count is the client's), so the
    // phases fall in different steps of the SLO's counting, as they would over minutes.
    let scraped = async |sent: usize| {
        eventually(Duration::from_secs(30), || async {
            instant(&prometheus, &route_total)
                .await
                .filter(|count| *count == sent as f64)
        })
        .await
        .unwrap_or_else(|| panic!("Prometheus never counted the {sent} requests sent"));
    };
    let (mut sent, mut errors) = get_products(&http, &gateway, QUIET).await;
    scraped(sent).await;
    let faults = format!("{product_admin}/admin/faults");
    let put = http
        .put(&faults)
        .json(&serde_json::json!({"error_ratio": 1.0}))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "setting the fault: {put:?}");
    let (n, bad) = get_products(&http, &gateway, BURST).await;
    (sent, errors) = (sent + n, errors + bad);
    scraped(sent).await;
    let cleared = http.delete(&faults).send().await.unwrap();
    assert!(
        cleared.status().is_success(),
        "clearing the fault: {cleared:?}"
    );
    let (n, bad) = get_products(&http, &gateway, QUIET).await;
    (sent, errors) = (sent + n, errors + bad);
    scraped(sent).await;
    assert!(
        errors >= BURST * 9 / 10,
        "the burst failed only {errors} of {BURST} requests"
    );
    let to = Utc::now() + chrono::Duration::seconds(1);

    let truth = errors as f64 / sent as f64;
    let measured = error_ratio(&prometheus, from, to).await;
    eprintln!("client: {errors} of {sent} ({truth}); SLO: {measured}");
    assert!(
        (measured - truth).abs() <= 0.1 * truth,
        "the SLO measured {measured}, the client saw {errors} / {sent} = {truth}"
    );
    stack.stop().await;
}

/// `count` product-detail requests through the gateway: (sent, answered 503).
async fn get_products(http: &reqwest::Client, gateway: &str, count: usize) -> (usize, usize) {
    let mut errors = 0;
    for i in 0..count {
        let status = http
            .get(format!("{gateway}/api/v1/products/{}", 1 + i % 50))
            .send()
            .await
            .expect("the gateway answers")
            .status()
            .as_u16();
        if status == 503 {
            errors += 1;
        }
    }
    (count, errors)
}

/// The SLO's measured ratio over `[from, to]`, through the slo crate.
async fn error_ratio(prometheus: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    let set = slo::parse(SLOS, Path::new("truth.yaml")).expect("valid SLO set");
    let window = Window::new(from, to, &set.defaults).unwrap();
    let sources = Sources::new().with(PrometheusSource::new(prometheus).unwrap());
    let outcome = slo::check(&set, &CheckContext { window, sources }).await;
    let verdict = &outcome.results[0].verdict;
    eprintln!("{} via {:?}", verdict.source, verdict.query);
    verdict
        .measured
        .unwrap_or_else(|| panic!("no value: {verdict:?}"))
}

/// The one value of an instant query now, `None` for no data or no answer.
async fn instant(prometheus: &str, query: &str) -> Option<f64> {
    let url =
        reqwest::Url::parse_with_params(&format!("{prometheus}/api/v1/query"), [("query", query)])
            .ok()?;
    let body: serde_json::Value = reqwest::Client::new()
        .get(url)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    match body["data"]["result"].as_array()?.as_slice() {
        [one] => one["value"][1].as_str()?.parse().ok(),
        _ => None,
    }
}
