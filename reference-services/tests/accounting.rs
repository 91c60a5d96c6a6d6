//! The accounting API (`GET /admin/accounting` on each service's admin listener) that drills count
//! through: the order service's orders and outbox backlog (filling while Kafka is down, drained
//! when it returns), audit's distinct audited orders (a redelivery or a second event for one
//! order counts once), and the outbox declaration of the service table matching what each
//! service reports. On SQLite and on a real PostgreSQL (the JSON expressions differ).

mod harness;

use harness::{
    fakes::FakePeers,
    kafka::{self, TestProducer},
    postgres::Postgres,
};
use serde_json::json;
use shop::testkit::{self, RECOVERY_DEADLINE, Running, get_json};
use shop::{
    platform::{
        accounting::AccountingReport,
        config::ServiceConfig,
        events::{Envelope, TOPIC_ORDERS, TOPIC_PAYMENTS},
    },
    proto::{CancelOrderRequest, CreateOrderRequest, OrderItem, order_service_client},
    services::{self, audit, order, payment},
};

async fn accounting_of(service: &Running) -> AccountingReport {
    let (status, body) = get_json(&format!("{}/admin/accounting", service.admin_url)).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).expect("an accounting report")
}

/// The service table's outbox declaration is what the running service reports.
fn assert_declared_outbox(report: &AccountingReport) {
    let spec = services::find(&report.service).expect("a known service");
    assert_eq!(
        spec.outbox,
        report.outbox.is_some(),
        "{} declares outbox = {} but reports {:?}",
        report.service,
        spec.outbox,
        report.outbox
    );
}

fn config(name: &str, dir: &std::path::Path, bootstrap: &str, db: Option<&str>) -> ServiceConfig {
    ServiceConfig {
        database_url: db.map(str::to_string),
        ..testkit::config(name, dir, bootstrap)
    }
}

fn create(user: &str, product_id: i64) -> CreateOrderRequest {
    CreateOrderRequest {
        user_id: user.into(),
        items: vec![OrderItem {
            product_id,
            quantity: 1,
            unit_price_cents: 0,
        }],
        shipping_address: "1 Test Street, Testville".into(),
        idempotency_key: String::new(),
    }
}

/// Orders accepted while every broker is down are counted at once and wait in the outbox, by
/// event type; they leave it when Kafka is back, and the order count stays.
async fn order_and_payment(order_db: Option<String>, payment_db: Option<String>) {
    let cluster = kafka::cluster();
    let bootstrap = cluster.bootstrap_servers();
    let peers = FakePeers::start().await;
    let dir = tempfile::tempdir().unwrap();
    let order_peers = peers.order_peers();
    let orders = testkit::start_with(
        config("order", dir.path(), &bootstrap, order_db.as_deref()),
        |rt| order::run_with(rt, order_peers),
    )
    .await;
    let order_url = orders.url.clone();
    let payments = testkit::start_with(
        config("payment", dir.path(), &bootstrap, payment_db.as_deref()),
        move |rt| async move { payment::run_with(rt, &order_url).await },
    )
    .await;

    let (status, body) = get_json(&format!("{}/admin/accounting", orders.admin_url)).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"service": "order", "counts": {"orders": 0},
               "outbox": {"pending": 0, "pending_by_type": {}}})
    );
    let payment_report = accounting_of(&payments).await;
    assert_declared_outbox(&payment_report);
    assert_eq!(payment_report.outbox.unwrap().pending, 0);

    kafka::all_brokers_down(&cluster);
    // Both stay ready: what they accept waits in their outboxes.
    kafka::assert_ready_while_kafka_down(&orders.url).await;
    kafka::assert_ready_while_kafka_down(&payments.url).await;
    let mut client = order_service_client::OrderServiceClient::connect(orders.url.clone())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for product_id in 1..=3 {
        let order = client.create_order(create("alice", product_id)).await;
        ids.push(order.expect("accepted while Kafka is down").into_inner().id);
    }
    client
        .cancel_order(CancelOrderRequest {
            user_id: "alice".into(),
            order_id: ids[0].clone(),
        })
        .await
        .expect("cancelled while Kafka is down");
    let during = accounting_of(&orders).await;
    assert_declared_outbox(&during);
    assert_eq!(during.counts["orders"], 3);
    let backlog = during.outbox.expect("order has an outbox");
    assert_eq!(
        backlog.pending_by_type,
        [
            ("order.cancelled".to_string(), 1),
            ("order.created".to_string(), 3)
        ]
        .into()
    );
    assert_eq!(backlog.pending, 4);

    kafka::all_brokers_up(&cluster);
    let drained = testkit::eventually("the outbox drained", RECOVERY_DEADLINE, || async {
        let report = accounting_of(&orders).await;
        (report.outbox.as_ref()?.pending == 0).then_some(report)
    })
    .await;
    assert_eq!(drained.counts["orders"], 3);
    kafka::wait_kafka_ok(&payments.url).await;
    assert_eq!(
        drained.outbox.unwrap().pending_by_type,
        Default::default(),
        "types with nothing pending are absent"
    );
    payments.stop().await;
    orders.stop().await;
}

/// Audit counts distinct orders among `order.created` events: a redelivery (same event id) and a
/// second event for the same order both count once, other event types not at all. No outbox.
async fn audit(db: Option<String>) {
    let cluster = kafka::cluster();
    let bootstrap = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let service = testkit::start_with(
        config("audit", dir.path(), &bootstrap, db.as_deref()),
        audit::run,
    )
    .await;
    let before = accounting_of(&service).await;
    assert_declared_outbox(&before);
    assert_eq!(before.counts["order_created_events"], 0);

    let created = |order_id: &str| Envelope::new("order.created", json!({"order_id": order_id}));
    let producer = TestProducer::new(&bootstrap);
    let first = created("o1");
    producer.send(TOPIC_ORDERS, "o1", &first).await;
    producer.send(TOPIC_ORDERS, "o1", &first).await;
    producer.send(TOPIC_ORDERS, "o1", &created("o1")).await;
    producer.send(TOPIC_ORDERS, "o2", &created("o2")).await;
    let cancelled = Envelope::new("order.cancelled", json!({"order_id": "o3"}));
    producer.send(TOPIC_ORDERS, "o3", &cancelled).await;
    let paid = Envelope::new("payment.succeeded", json!({"order_id": "o4"}));
    producer.send(TOPIC_PAYMENTS, "o4", &paid).await;

    let stats_url = format!("{}/v1/audit/stats", service.url);
    testkit::eventually("every event audited", RECOVERY_DEADLINE, || {
        let url = stats_url.clone();
        async move {
            let (_, stats) = get_json(&url).await;
            (stats["total"] == 5).then_some(())
        }
    })
    .await;
    let after = accounting_of(&service).await;
    assert_eq!(
        serde_json::to_value(&after).unwrap(),
        json!({"service": "audit", "counts": {"order_created_events": 2}})
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_and_payment_on_sqlite() {
    order_and_payment(None, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_on_sqlite() {
    audit(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounting_on_postgres() {
    let Some(pg) = Postgres::start() else { return };
    order_and_payment(
        Some(pg.database("accounting_order").await),
        Some(pg.database("accounting_payment").await),
    )
    .await;
    audit(Some(pg.database("accounting_audit").await)).await;
}
