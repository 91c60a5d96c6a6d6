//! End-to-end resilience of the embedded stack: a SIGKILLed order service loses no acknowledged
//! order (the supervisor restarts it), and orders accepted while every Kafka broker is down are
//! all published, once each, when the brokers return.

mod common;

use std::{collections::HashSet, sync::Arc, time::Duration};

use common::{Shopper, eventually, start_stack};
use reqwest::Method;
use serde_json::{Value, json};

/// The order id of every `order.created` event in the audit log, one entry per event.
async fn audited_order_ids(http: &reqwest::Client, audit: &str) -> Option<Vec<String>> {
    let body: Value = http
        .get(format!(
            "{audit}/v1/audit/events?type=order.created&limit=1000"
        ))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    Some(
        body["events"]
            .as_array()?
            .iter()
            .filter_map(|e| e["payload"]["order_id"].as_str().map(String::from))
            .collect(),
    )
}

/// The outbox and event lines of a service's /metrics, for a failure message.
async fn metrics_of(http: &reqwest::Client, url: &str) -> String {
    let text = match http.get(format!("{url}/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(e) => return format!("unreachable: {e}"),
    };
    text.lines()
        .filter(|l| l.starts_with("outbox_pending") || l.starts_with("kafka_events"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_survive_a_sigkill_and_a_kafka_outage() {
    let stack = start_stack(false).await;
    let base = stack.gateway_url().to_string();
    let http = reqwest::Client::new();
    let shopper = Arc::new(Shopper::register(&base, "resilience").await);

    // 1. SIGKILL the order service while orders are being placed.
    let placer = {
        let shopper = shopper.clone();
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0..120 {
                let body = json!({"items": [{"product_id": 1 + (i % 50), "quantity": 1}], "shipping_address": "2 Side St"});
                let (status, order) = shopper
                    .call(Method::POST, "/api/v1/orders", Some(body))
                    .await;
                if status == 201 {
                    acknowledged.push(order["order_id"].as_str().unwrap().to_string());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            acknowledged
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed_pid = stack.kill("order").expect("order is running");
    let acknowledged = placer.await.unwrap();
    stack
        .supervisor()
        .wait_ready("order", Duration::from_secs(30))
        .await
        .expect("order restarted");
    assert!(stack.supervisor().restarts("order").unwrap() >= 1);
    assert_ne!(stack.supervisor().pid("order").unwrap(), Some(killed_pid));
    assert!(!acknowledged.is_empty());
    for id in &acknowledged {
        let (status, _) = shopper
            .call(Method::GET, &format!("/api/v1/orders/{id}"), None)
            .await;
        assert_eq!(status, 200, "acknowledged order {id} survives the kill");
    }

    // 2. Every broker down: orders are still accepted, and all are published once brokers return.
    for id in stack.kafka().broker_ids() {
        stack.kafka().broker_down(id).await.unwrap();
    }
    let mut during_outage = Vec::new();
    for i in 0..200 {
        let body = json!({"items": [{"product_id": 100 + (i % 20), "quantity": 1}], "shipping_address": "3 Dark St"});
        let (status, order) = shopper
            .call(Method::POST, "/api/v1/orders", Some(body))
            .await;
        assert_eq!(status, 201, "order accepted while Kafka is down: {order}");
        during_outage.push(order["order_id"].as_str().unwrap().to_string());
    }
    for id in stack.kafka().broker_ids() {
        stack.kafka().broker_up(id).await.unwrap();
    }
    let audit = stack.endpoint("audit").unwrap().url.clone();
    let expected: HashSet<String> = acknowledged.iter().chain(&during_outage).cloned().collect();
    let published = eventually(Duration::from_secs(60), || {
        let http = http.clone();
        let audit = audit.clone();
        let expected = expected.clone();
        async move {
            let seen = audited_order_ids(&http, &audit).await?;
            let distinct: HashSet<String> = seen.iter().cloned().collect();
            expected.is_subset(&distinct).then_some(seen)
        }
    })
    .await;
    let Some(published) = published else {
        let seen: HashSet<String> = audited_order_ids(&http, &audit)
            .await
            .unwrap_or_default()
            .into_iter()
            .collect();
        let missing = expected.difference(&seen).count();
        let order_metrics = metrics_of(&http, &stack.endpoint("order").unwrap().url).await;
        let audit_metrics = metrics_of(&http, &audit).await;
        let keep = std::env::temp_dir().join("shakedown-resilience-failure");
        let _ = std::process::Command::new("cp")
            .arg("-r")
            .arg(stack.data_dir())
            .arg(&keep)
            .status();
        panic!(
            "{missing} of {} acknowledged orders have no order.created event in audit after 60 s \
             (data and logs copied to {})\norder: {order_metrics}\naudit: {audit_metrics}",
            expected.len(),
            keep.display()
        );
    };
    let outage_ids: HashSet<_> = during_outage.iter().cloned().collect();
    assert_eq!(outage_ids.len(), 200);
    let outage_events: Vec<&String> = published
        .iter()
        .filter(|id| outage_ids.contains(*id))
        .collect();
    assert_eq!(
        outage_events.len(),
        200,
        "exactly 200 order.created events for the 200 orders, each once"
    );
    let acknowledged_events = published
        .iter()
        .filter(|id| acknowledged.contains(id))
        .count();
    assert_eq!(
        acknowledged_events,
        acknowledged.len(),
        "one event per acknowledged order"
    );

    stack.stop().await;
}
