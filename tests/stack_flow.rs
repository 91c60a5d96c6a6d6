//! End-to-end: the embedded stack started from the real binary, driven through the gateway the
//! way the README's curl walk does it (register → login → browse → cart → order → pay → status),
//! then the events, the metrics of every service, and per-user isolation.

mod common;

use std::time::Duration;

use common::{Shopper, eventually, start_stack};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shopping_flow_events_metrics_and_isolation() {
    let stack = start_stack(false).await;
    let base = stack.gateway_url().to_string();
    let http = reqwest::Client::new();

    let health: Value = http
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "healthy");

    let alice = Shopper::register(&base, "alice").await;
    let (status, products) = alice
        .call(Method::GET, "/api/v1/products?skip=0&limit=5", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(products["products"].as_array().unwrap().len(), 5);
    assert!(products["total"].as_i64().unwrap() >= 1000);
    let product_id = products["products"][0]["id"].as_i64().unwrap();
    let (status, detail) = alice
        .call(Method::GET, &format!("/api/v1/products/{product_id}"), None)
        .await;
    assert_eq!(status, 200);
    assert!(detail["stock"].as_i64().unwrap() > 0);
    let (status, found) = alice
        .call(Method::GET, "/api/v1/products/search?q=keyboard", None)
        .await;
    assert_eq!(status, 200, "{found}");

    let (status, cart) = alice
        .call(
            Method::POST,
            "/api/v1/cart/items",
            Some(json!({"product_id": product_id, "quantity": 2})),
        )
        .await;
    assert_eq!(status, 200, "{cart}");
    assert_eq!(cart["items"][0]["quantity"], 2);

    let (status, order) = alice
        .call(
            Method::POST,
            "/api/v1/orders",
            Some(json!({"shipping_address": "1 Main St"})),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    let order_id = order["order_id"].as_str().unwrap().to_string();
    let total = order["total_amount"].as_f64().unwrap();
    assert!(total > 0.0);
    let (_, cart) = alice.call(Method::GET, "/api/v1/cart", None).await;
    assert_eq!(
        cart["items"].as_array().unwrap().len(),
        0,
        "ordering the cart empties it"
    );

    let (status, payment) = alice
        .call(
            Method::POST,
            "/api/v1/payments",
            Some(json!({"order_id": order_id, "amount": total, "method": "card"})),
        )
        .await;
    assert_eq!(status, 201, "{payment}");
    let payment_id = payment["payment_id"].as_str().unwrap().to_string();
    let (status, order_now) = alice
        .call(Method::GET, &format!("/api/v1/orders/{order_id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(order_now["status"], "paid");

    // Per-user isolation: another user sees none of it.
    let mallory = Shopper::register(&base, "mallory").await;
    for path in [
        format!("/api/v1/orders/{order_id}"),
        format!("/api/v1/payments/{payment_id}"),
    ] {
        let (status, _) = mallory.call(Method::GET, &path, None).await;
        assert_eq!(status, 404, "{path} must be invisible to another user");
    }
    let (status, _) = mallory
        .call(
            Method::PUT,
            &format!("/api/v1/orders/{order_id}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, listed) = mallory.call(Method::GET, "/api/v1/orders", None).await;
    assert_eq!(status, 200);
    assert_eq!(listed["orders"].as_array().unwrap().len(), 0);
    let (_, mallory_cart) = mallory.call(Method::GET, "/api/v1/cart", None).await;
    assert_eq!(mallory_cart["items"].as_array().unwrap().len(), 0);

    // The order.created event reaches notification and audit (through the mock Kafka cluster).
    let notification = stack.endpoint("notification").unwrap().url.clone();
    let seen = eventually(Duration::from_secs(30), || {
        let http = http.clone();
        let url = format!("{notification}/v1/notifications?user_id={}", alice.user_id);
        async move {
            let body: Value = http.get(url).send().await.ok()?.json().await.ok()?;
            let kinds: Vec<String> = body["notifications"]
                .as_array()?
                .iter()
                .filter_map(|n| n["kind"].as_str().map(String::from))
                .collect();
            (kinds.iter().any(|k| k.contains("order"))
                && kinds.iter().any(|k| k.contains("payment")))
            .then_some(kinds)
        }
    })
    .await;
    assert!(seen.is_some(), "notification saw the order and the payment");
    let audit = stack.endpoint("audit").unwrap().url.clone();
    let audited = eventually(Duration::from_secs(30), || {
        let http = http.clone();
        let url = format!("{audit}/v1/audit/events?type=order.created&limit=1000");
        let order_id = order_id.clone();
        async move {
            let body: Value = http.get(url).send().await.ok()?.json().await.ok()?;
            body["events"]
                .as_array()?
                .iter()
                .any(|e| e.to_string().contains(&order_id))
                .then_some(())
        }
    })
    .await;
    assert!(
        audited.is_some(),
        "audit logged order.created for {order_id}"
    );

    // Every service exposes its latency histogram and the trace context comes back.
    for endpoint in stack.endpoints() {
        let text = http
            .get(format!("{}/metrics", endpoint.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            text.contains("http_request_duration_seconds_bucket")
                || text.contains("grpc_server_handling_seconds_bucket"),
            "{} exposes latency histograms",
            endpoint.name
        );
        assert!(
            text.contains(&format!("service=\"{}\"", endpoint.name)),
            "{} labels its series",
            endpoint.name
        );
    }
    let order_metrics = http
        .get(format!("{}/metrics", stack.endpoint("order").unwrap().url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(order_metrics.contains("orders_created_total"));
    let gateway_metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        gateway_metrics.contains("route=\"/api/v1/orders/{id}\"")
            || gateway_metrics.contains("route=\"/api/v1/orders/{order_id}\""),
        "routes are templated"
    );
    let traced = http
        .get(format!("{base}/api/v1/products/1"))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .unwrap();
    let echoed = traced.headers()["traceparent"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        echoed.contains("4bf92f3577b34da6a3ce929d0e0e4736"),
        "trace id kept: {echoed}"
    );

    // Logout revokes the token at once.
    let (status, _) = alice.call(Method::POST, "/api/v1/auth/logout", None).await;
    assert_eq!(status, 204);
    let (status, _) = alice.call(Method::GET, "/api/v1/cart", None).await;
    assert_eq!(status, 401);

    stack.stop().await;
}
