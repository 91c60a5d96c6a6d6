//! The event-driven services end to end on a mock Kafka cluster: recommendation, notification,
//! audit and analytics consume events published here (redeliveries included, by publishing the
//! same envelope twice), and analytics-ingest publishes page views.
//!
//! To know that a redelivery was consumed before asserting it was ignored, each test publishes
//! a last "sentinel" event with the same key (so the same partition, so consumed after it) and
//! waits until the sentinel's effect is visible.

mod harness;

use harness::kafka::{self, TestProducer, TopicReader};
use serde_json::{Value, json};
use shop::testkit::{self, DEADLINE, RECOVERY_DEADLINE, get_json};
use shop::{
    platform::events::{
        Envelope, TOPIC_ANALYTICS_RESULTS, TOPIC_ORDERS, TOPIC_PAGE_VIEWED, TOPIC_PAYMENTS,
    },
    proto::{
        GetRecommendationsRequest, recommendation_service_client::RecommendationServiceClient,
    },
    services::{analytics, analytics_ingest, audit, notification, recommendation},
};
use tonic::Code;

/// 2024-01-01T00:00:00Z, the start of a window.
const T0: i64 = 1_704_067_200_000;

fn order_created(order_id: &str, user_id: &str, products: &[i64]) -> Envelope {
    let items: Vec<Value> = products
        .iter()
        .map(|p| json!({"product_id": p, "quantity": 1, "unit_price_cents": 100}))
        .collect();
    Envelope::new(
        "order.created",
        json!({"order_id": order_id, "user_id": user_id, "items": items,
               "total_cents": 100 * products.len() as i64, "created_at": T0}),
    )
}

fn order_cancelled(order_id: &str, user_id: &str) -> Envelope {
    Envelope::new(
        "order.cancelled",
        json!({"order_id": order_id, "user_id": user_id}),
    )
}

fn payment_succeeded(order_id: &str, user_id: &str, amount_cents: i64) -> Envelope {
    Envelope::new(
        "payment.succeeded",
        json!({"payment_id": "p1", "order_id": order_id, "user_id": user_id,
               "amount_cents": amount_cents, "method": "card"}),
    )
}

fn ranked(list: &shop::proto::RecommendationList) -> Vec<(i64, i64)> {
    list.items.iter().map(|r| (r.product_id, r.score)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recommendations_rank_co_purchases_and_ignore_redeliveries() {
    let cluster = kafka::cluster();
    let bootstrap = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let config = testkit::config("recommendation", dir.path(), &bootstrap);
    let service = testkit::start_with(config, |rt| recommendation::run_with(rt, 1000)).await;
    let producer = TestProducer::new(&bootstrap);

    let baskets: [&[i64]; 4] = [&[1, 2, 3], &[1, 2], &[2, 1], &[1, 4]];
    let mut last = None;
    for (i, basket) in baskets.iter().enumerate() {
        let event = order_created(&format!("o{i}"), "u1", basket);
        producer.send(TOPIC_ORDERS, "one-partition", &event).await;
        last = Some(event);
    }
    producer
        .send(TOPIC_ORDERS, "one-partition", &last.unwrap())
        .await;
    producer
        .send(
            TOPIC_ORDERS,
            "one-partition",
            &order_created("sentinel", "u2", &[50, 60]),
        )
        .await;

    let mut client = RecommendationServiceClient::connect(service.url.clone())
        .await
        .unwrap();
    let request = |product_id, limit| GetRecommendationsRequest { product_id, limit };
    testkit::eventually("the sentinel order is counted", DEADLINE, || {
        let mut client = client.clone();
        async move {
            let list = client
                .get_recommendations(request(50, 1))
                .await
                .ok()?
                .into_inner();
            (ranked(&list) == vec![(60, 1)]).then_some(())
        }
    })
    .await;

    let list = client
        .get_recommendations(request(1, 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.product_id, 1);
    assert_eq!(
        ranked(&list),
        vec![(2, 3), (3, 1), (4, 1), (50, 1), (60, 1)],
        "co-purchases first (the redelivered order counted once), then best sellers"
    );
    let fresh = client
        .get_recommendations(request(999, 3))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        ranked(&fresh),
        vec![(1, 4), (2, 3), (3, 1)],
        "best sellers for an unseen product"
    );
    let capped = client
        .get_recommendations(request(1, 500))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        capped.items.len(),
        20,
        "filled up to the maximum with neighbours"
    );
    let unknown = client
        .get_recommendations(request(1001, 5))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let invalid = client.get_recommendations(request(0, 5)).await.unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_once_per_event() {
    let cluster = kafka::cluster();
    let bootstrap = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let service = testkit::start_with(
        testkit::config("notification", dir.path(), &bootstrap),
        notification::run,
    )
    .await;
    let producer = TestProducer::new(&bootstrap);

    let created = order_created("o1", "nina", &[1, 2]);
    producer.send(TOPIC_ORDERS, "o1", &created).await;
    producer.send(TOPIC_ORDERS, "o1", &created).await;
    producer
        .send(TOPIC_PAYMENTS, "o1", &payment_succeeded("o1", "nina", 200))
        .await;
    let paid = Envelope::new("order.paid", json!({"order_id": "o1", "user_id": "nina"}));
    producer.send(TOPIC_ORDERS, "o1", &paid).await;
    producer
        .send(TOPIC_ORDERS, "o1", &order_cancelled("o1", "nina"))
        .await;

    let url = format!("{}/v1/notifications?user_id=nina", service.url);
    let notifications = testkit::eventually("nina's notifications", DEADLINE, || {
        let url = url.clone();
        async move {
            let (_, body) = get_json(&url).await;
            let list = body["notifications"].as_array()?.clone();
            let kinds: Vec<&str> = list.iter().filter_map(|n| n["kind"].as_str()).collect();
            (kinds.contains(&"order_cancelled") && kinds.contains(&"payment_receipt"))
                .then_some(list)
        }
    })
    .await;
    let mut kinds: Vec<&str> = notifications
        .iter()
        .filter_map(|n| n["kind"].as_str())
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec!["order_cancelled", "order_confirmation", "payment_receipt"]
    );
    let confirmation = notifications
        .iter()
        .find(|n| n["kind"] == "order_confirmation")
        .unwrap();
    assert_eq!(confirmation["event_id"], created.event_id.as_str());
    assert!(confirmation["message"].as_str().unwrap().contains("$2.00"));

    let (status, stats) = get_json(&format!("{}/v1/notifications/stats", service.url)).await;
    assert_eq!(status, 200);
    assert_eq!(stats["total"], 3);
    assert_eq!(
        stats["by_type"],
        json!({"order.created": 1, "order.cancelled": 1, "payment.succeeded": 1})
    );
    let (status, body) = get_json(&format!("{}/v1/notifications", service.url)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_request");
    let (_, nobody) = get_json(&format!("{}/v1/notifications?user_id=zed", service.url)).await;
    assert_eq!(nobody["notifications"], json!([]));
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_logs_every_topic_once() {
    let cluster = kafka::cluster();
    let bootstrap = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let service =
        testkit::start_with(testkit::config("audit", dir.path(), &bootstrap), audit::run).await;
    let producer = TestProducer::new(&bootstrap);

    let mut created = order_created("o7", "olga", &[3]);
    created.trace_id = Some("4bf92f3577b34da6a3ce929d0e0e4736".into());
    producer.send(TOPIC_ORDERS, "o7", &created).await;
    producer.send(TOPIC_ORDERS, "o7", &created).await;
    producer
        .send(TOPIC_PAYMENTS, "o7", &payment_succeeded("o7", "olga", 100))
        .await;
    let view = Envelope::new("page.viewed", json!({"url": "/products/3"}));
    producer.send(TOPIC_PAGE_VIEWED, "s1", &view).await;
    let window = Envelope::new("analytics.window", json!({"order_count": 1}));
    producer.send(TOPIC_ANALYTICS_RESULTS, "w", &window).await;
    producer
        .send(TOPIC_ORDERS, "o7", &order_cancelled("o7", "olga"))
        .await;

    let stats_url = format!("{}/v1/audit/stats", service.url);
    let stats = testkit::eventually("every event audited", DEADLINE, || {
        let url = stats_url.clone();
        async move {
            let (_, stats) = get_json(&url).await;
            let complete =
                stats["total"].as_i64()? >= 5 && stats["by_type"]["order.cancelled"] == 1;
            complete.then_some(stats)
        }
    })
    .await;
    assert_eq!(
        stats["total"], 5,
        "the redelivered order.created is stored once: {stats}"
    );
    assert_eq!(
        stats["by_type"],
        json!({"order.created": 1, "order.cancelled": 1, "payment.succeeded": 1,
               "page.viewed": 1, "analytics.window": 1})
    );

    let (status, body) = get_json(&format!(
        "{}/v1/audit/events?type=order.created",
        service.url
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["total"], 1);
    let event = &body["events"][0];
    assert_eq!(event["event_id"], created.event_id.as_str());
    assert_eq!(event["topic"], "orders");
    assert_eq!(event["type"], "order.created");
    assert_eq!(event["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(event["payload"]["order_id"], "o7");

    let (_, all) = get_json(&format!("{}/v1/audit/events?limit=2", service.url)).await;
    assert_eq!(all["total"], 5);
    assert_eq!(all["events"].as_array().unwrap().len(), 2);
    let (status, _) = get_json(&format!("{}/v1/audit/events?limit=0", service.url)).await;
    assert_eq!(status, 400);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_publishes_closed_windows() {
    let cluster = kafka::cluster();
    let bootstrap = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let service = testkit::start_with(
        testkit::config("analytics", dir.path(), &bootstrap),
        analytics::run,
    )
    .await;
    let producer = TestProducer::new(&bootstrap);

    let at = |ms: i64, mut event: Envelope| {
        event.occurred_at = T0 + ms;
        event
    };
    let first = at(1_000, order_created("a1", "u1", &[1]));
    producer.send(TOPIC_ORDERS, "k", &first).await;
    producer.send(TOPIC_ORDERS, "k", &first).await;
    producer
        .send(
            TOPIC_ORDERS,
            "k",
            &at(20_000, order_created("a2", "u2", &[1, 2])),
        )
        .await;
    producer
        .send(
            TOPIC_ORDERS,
            "k",
            &at(59_000, order_created("a3", "u1", &[1, 2, 3])),
        )
        .await;
    // Watermark 75 s - 10 s = 65 s: the first minute closes.
    producer
        .send(
            TOPIC_ORDERS,
            "k",
            &at(75_000, order_created("b1", "u3", &[4])),
        )
        .await;
    producer
        .send(
            TOPIC_ORDERS,
            "k",
            &at(30_000, order_created("late", "u4", &[5])),
        )
        .await;

    let mut results = TopicReader::new(&bootstrap, TOPIC_ANALYTICS_RESULTS);
    let events = results
        .read_until("the first window", |events| !events.is_empty())
        .await;
    assert_eq!(
        events.len(),
        1,
        "only the first minute is closed: {events:?}"
    );
    assert_eq!(events[0].event_type, "analytics.window");
    let window = &events[0].data;
    assert_eq!(window["window_start"], "2024-01-01T00:00:00Z");
    assert_eq!(window["window_end"], "2024-01-01T00:01:00Z");
    assert_eq!(window["order_count"], 3, "the redelivery counts once");
    assert_eq!(window["total_revenue_cents"], 600);
    assert_eq!(window["total_revenue"], 6.0);
    assert_eq!(window["total_items"], 6);
    assert_eq!(window["unique_users"], 2);
    assert_eq!(window["average_order_value"], 2.0);

    let url = format!("{}/v1/windows", service.url);
    let body = testkit::eventually("the late event is counted", DEADLINE, || {
        let url = url.clone();
        async move {
            let (_, body) = get_json(&url).await;
            (body["late_events"] == 1).then_some(body)
        }
    })
    .await;
    assert_eq!(body["windows"].as_array().unwrap().len(), 1);
    assert_eq!(body["windows"][0], *window);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_accepts_page_views_only_when_kafka_acknowledges() {
    let cluster = kafka::cluster();
    let bootstrap = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let service = testkit::start_with(
        testkit::config("analytics-ingest", dir.path(), &bootstrap),
        analytics_ingest::run,
    )
    .await;
    let url = format!("{}/v1/events", service.url);
    let client = reqwest::Client::new();
    let post = |body: Value| client.post(&url).json(&body).send();

    let view =
        json!({"type": "page.viewed", "url": "/products/9", "product_id": 9, "session_id": "s9"});
    let response = post(view.clone()).await.unwrap();
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    let event_id = body["event_id"].as_str().unwrap().to_string();
    let mut reader = TopicReader::new(&bootstrap, TOPIC_PAGE_VIEWED);
    let events = reader
        .read_until("the page view", |events| {
            events.iter().any(|e| e.event_id == event_id)
        })
        .await;
    let published = events.iter().find(|e| e.event_id == event_id).unwrap();
    assert_eq!(published.event_type, "page.viewed");
    assert_eq!(published.data["url"], "/products/9");
    assert_eq!(published.data["product_id"], 9);

    for bad in [
        json!({"type": "page.viewed"}),
        json!({"type": "order.created", "url": "/"}),
        json!({"type": "page.viewed", "url": ""}),
        json!({"type": "page.viewed", "url": "x".repeat(2049)}),
        json!(["not", "an", "object"]),
    ] {
        let response = post(bad.clone()).await.unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_request", "{bad}");
    }
    let not_json = client.post(&url).body("url=/").send().await.unwrap();
    assert_eq!(not_json.status(), 400);

    kafka::all_brokers_down(&cluster);
    let refused = post(view.clone()).await.unwrap();
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    kafka::all_brokers_up(&cluster);
    testkit::eventually("Kafka acknowledges again", RECOVERY_DEADLINE, || {
        let response = post(view.clone());
        async move { (response.await.ok()?.status() == 202).then_some(()) }
    })
    .await;
    service.stop().await;
}
