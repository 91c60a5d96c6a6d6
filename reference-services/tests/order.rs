//! The order service end to end over gRPC, with fake offer and inventory peers and a mock Kafka
//! cluster: the order lifecycle, ownership checks, idempotency keys, validation, the outbox
//! guarantee while every broker is down (the service stays ready, orders wait in the outbox and
//! are published when the brokers return), and a restart after the process was killed. The same
//! scenarios run on SQLite and on a real PostgreSQL.

mod harness;

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    process::{Child, Command, Stdio},
};

use futures::{StreamExt, stream};
use harness::{
    fakes::{FakePeers, SOLD_OUT_PRODUCT, unit_price},
    kafka::{self, Cluster, TopicReader},
    postgres::Postgres,
};
use shop::testkit::{self, DEADLINE, Running};
use shop::{
    platform::{
        config::{ServiceConfig, free_port},
        events::{Envelope, TOPIC_ORDERS},
        http::Runtime,
    },
    proto::{
        CancelOrderRequest, CreateOrderRequest, GetOrderRequest, ListOrdersRequest,
        MarkPaidRequest, Order, OrderItem, order_service_client::OrderServiceClient,
    },
    services::order,
};
use tonic::{Code, transport::Channel};

type Client = OrderServiceClient<Channel>;

/// An order service on a fresh mock Kafka cluster, with fake peers.
struct Fixture {
    cluster: Cluster,
    bootstrap: String,
    peers: FakePeers,
    client: Client,
    service: Running,
    _dir: tempfile::TempDir,
}

/// Starts the fixture; `database_url` `None` means SQLite in a temporary directory.
async fn fixture(database_url: Option<String>) -> Fixture {
    let cluster = kafka::cluster();
    let bootstrap = cluster.bootstrap_servers();
    let peers = FakePeers::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = ServiceConfig {
        database_url,
        ..testkit::config("order", dir.path(), &bootstrap)
    };
    let order_peers = peers.order_peers();
    let service = testkit::start_with(config, |rt| order::run_with(rt, order_peers)).await;
    let client = Client::connect(service.url.clone()).await.unwrap();
    Fixture {
        cluster,
        bootstrap,
        peers,
        client,
        service,
        _dir: dir,
    }
}

fn create(user: &str, lines: &[(i64, i64)], key: &str) -> CreateOrderRequest {
    CreateOrderRequest {
        user_id: user.into(),
        items: lines
            .iter()
            .map(|&(product_id, quantity)| OrderItem {
                product_id,
                quantity,
                unit_price_cents: 0,
            })
            .collect(),
        shipping_address: "1 Test Street, Testville".into(),
        idempotency_key: key.into(),
    }
}

fn get(user: &str, order_id: &str) -> GetOrderRequest {
    GetOrderRequest {
        user_id: user.into(),
        order_id: order_id.into(),
    }
}

fn cancel(user: &str, order_id: &str) -> CancelOrderRequest {
    CancelOrderRequest {
        user_id: user.into(),
        order_id: order_id.into(),
    }
}

fn mark_paid(user: &str, order_id: &str, payment_id: &str) -> MarkPaidRequest {
    MarkPaidRequest {
        user_id: user.into(),
        order_id: order_id.into(),
        payment_id: payment_id.into(),
    }
}

fn list(user: &str, status: &str) -> ListOrdersRequest {
    ListOrdersRequest {
        user_id: user.into(),
        status: status.into(),
    }
}

fn events_of<'a>(events: &'a [Envelope], event_type: &str, order_id: &str) -> Vec<&'a Envelope> {
    events
        .iter()
        .filter(|e| e.event_type == event_type && e.data["order_id"] == order_id)
        .collect()
}

async fn lifecycle(database_url: Option<String>) {
    let mut f = fixture(database_url).await;

    let created = f
        .client
        .create_order(create("alice", &[(1, 2), (7, 1)], ""))
        .await
        .unwrap();
    let first = created.into_inner();
    assert_eq!(first.status, "pending");
    assert_eq!(first.total_cents, 2 * unit_price(1) + unit_price(7));
    assert_eq!(first.items[0].unit_price_cents, unit_price(1));
    assert_eq!(
        f.peers.inventory.reservation(&first.id),
        Some(vec![(1, 2), (7, 1)])
    );

    let fetched = f
        .client
        .get_order(get("alice", &first.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, first);
    let foreign = f.client.get_order(get("bob", &first.id)).await.unwrap_err();
    assert_eq!(
        foreign.code(),
        Code::NotFound,
        "another user's order must not be revealed"
    );

    let listed = f
        .client
        .list_orders(list("alice", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.orders, vec![first.clone()]);
    assert!(
        f.client
            .list_orders(list("bob", ""))
            .await
            .unwrap()
            .into_inner()
            .orders
            .is_empty()
    );
    assert!(
        f.client
            .list_orders(list("alice", "paid"))
            .await
            .unwrap()
            .into_inner()
            .orders
            .is_empty()
    );
    let bad_filter = f
        .client
        .list_orders(list("alice", "shipped"))
        .await
        .unwrap_err();
    assert_eq!(bad_filter.code(), Code::InvalidArgument);

    let foreign = f
        .client
        .cancel_order(cancel("bob", &first.id))
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound);
    let cancelled = f
        .client
        .cancel_order(cancel("alice", &first.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.status, "cancelled");
    assert!(f.peers.inventory.was_released(&first.id));
    let again = f
        .client
        .cancel_order(cancel("alice", &first.id))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    let pay_cancelled = f
        .client
        .mark_paid(mark_paid("alice", &first.id, "p0"))
        .await
        .unwrap_err();
    assert_eq!(pay_cancelled.code(), Code::FailedPrecondition);

    let second = f
        .client
        .create_order(create("alice", &[(3, 1)], ""))
        .await
        .unwrap()
        .into_inner();
    let foreign = f
        .client
        .mark_paid(mark_paid("bob", &second.id, "p1"))
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound);
    let paid = f
        .client
        .mark_paid(mark_paid("alice", &second.id, "p1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paid.status, "paid");
    let retried = f
        .client
        .mark_paid(mark_paid("alice", &second.id, "p1"))
        .await
        .unwrap();
    assert_eq!(
        retried.into_inner().status,
        "paid",
        "a retried MarkPaid answers like the first"
    );
    let other_payment = f
        .client
        .mark_paid(mark_paid("alice", &second.id, "p2"))
        .await
        .unwrap_err();
    assert_eq!(other_payment.code(), Code::FailedPrecondition);
    let cancel_paid = f
        .client
        .cancel_order(cancel("alice", &second.id))
        .await
        .unwrap_err();
    assert!(
        f.peers.inventory.was_committed(&second.id),
        "paying makes the reservation permanent"
    );
    // The fake peers serve no payment service, so the refund fails: the order must stay paid.
    assert_eq!(cancel_paid.code(), Code::FailedPrecondition);
    assert!(
        cancel_paid.message().contains("stays paid"),
        "{cancel_paid:?}"
    );
    let still_paid = f
        .client
        .get_order(get("alice", &second.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        still_paid.status, "paid",
        "no cancelled order with money taken"
    );
    assert!(
        !f.peers.inventory.was_released(&second.id),
        "a paid order keeps its stock"
    );

    // Its reservation expired before it was paid: the order is cancelled, not paid, and the
    // refusal tells the payment service to refund.
    let lapsed = f
        .client
        .create_order(create("alice", &[(4, 1)], ""))
        .await
        .unwrap()
        .into_inner();
    f.peers.inventory.expire(&lapsed.id);
    let too_late = f
        .client
        .mark_paid(mark_paid("alice", &lapsed.id, "p3"))
        .await
        .unwrap_err();
    assert_eq!(too_late.code(), Code::FailedPrecondition);
    assert!(too_late.message().contains("expired"), "{too_late:?}");
    let expired = f
        .client
        .get_order(get("alice", &lapsed.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(expired.status, "cancelled");

    let reservations = f.peers.inventory.reservation_count();
    let unknown = f
        .client
        .create_order(create("alice", &[(1, 1), (5000, 1)], ""))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let sold_out = f
        .client
        .create_order(create("alice", &[(SOLD_OUT_PRODUCT, 1)], ""))
        .await
        .unwrap_err();
    assert_eq!(sold_out.code(), Code::FailedPrecondition);
    assert_eq!(f.peers.inventory.reservation_count(), reservations);
    let listed = f
        .client
        .list_orders(list("alice", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.orders.len(), 3, "refused orders are not stored");

    let mut reader = TopicReader::new(&f.bootstrap, TOPIC_ORDERS);
    let events = reader
        .read_until("the lifecycle events", |events| {
            !events_of(events, "order.cancelled", &first.id).is_empty()
                && !events_of(events, "order.paid", &second.id).is_empty()
                && !events_of(events, "order.cancelled", &lapsed.id).is_empty()
        })
        .await;
    let expiry = events_of(events, "order.cancelled", &lapsed.id);
    assert_eq!(expiry.len(), 1);
    assert_eq!(expiry[0].data["reason"], "reservation_expired");
    assert!(events_of(events, "order.paid", &lapsed.id).is_empty());
    assert!(events_of(events, "order.cancelled", &second.id).is_empty());
    assert_eq!(events_of(events, "order.created", &first.id).len(), 1);
    assert_eq!(events_of(events, "order.created", &second.id).len(), 1);
    let paid_events = events_of(events, "order.paid", &second.id);
    assert_eq!(
        paid_events.len(),
        1,
        "the retried MarkPaid must not announce twice"
    );
    assert_eq!(paid_events[0].data["payment_id"], "p1");
    let created = events_of(events, "order.created", &first.id)[0];
    assert_eq!(created.data["user_id"], "alice");
    assert_eq!(created.data["total_cents"], first.total_cents);
    assert_eq!(created.data["items"][0]["product_id"], 1);
    f.service.stop().await;
}

async fn idempotency(database_url: Option<String>) {
    let mut f = fixture(database_url).await;
    let first = f
        .client
        .create_order(create("alice", &[(2, 1)], "key-1"))
        .await
        .unwrap();
    let repeat = f
        .client
        .create_order(create("alice", &[(2, 1)], "key-1"))
        .await
        .unwrap();
    assert_eq!(first.get_ref().id, repeat.get_ref().id);
    assert_eq!(
        f.peers.inventory.reservation_count(),
        1,
        "the repeat reserves nothing"
    );

    let other_user = f
        .client
        .create_order(create("bob", &[(2, 1)], "key-1"))
        .await
        .unwrap();
    assert_ne!(
        other_user.get_ref().id,
        first.get_ref().id,
        "keys are per user"
    );

    // Concurrent retries with one key: one order, and no reservation left behind by the losers.
    let client = f.client.clone();
    let ids: HashSet<String> = stream::iter(0..8)
        .map(|_| {
            let mut client = client.clone();
            async move {
                client
                    .create_order(create("alice", &[(4, 2)], "key-2"))
                    .await
                    .unwrap()
                    .into_inner()
                    .id
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(f.peers.inventory.reservation_count(), 3);
    let alice = f
        .client
        .list_orders(list("alice", ""))
        .await
        .unwrap()
        .into_inner()
        .orders;
    assert_eq!(alice.len(), 2);

    // Concurrent MarkPaid calls of one payment (the repeats of one payment request): every one
    // succeeds, since a refusal would make the payment service refund a paid order.
    let order_id = ids.into_iter().next().unwrap();
    let answers: Vec<Result<Order, tonic::Status>> = stream::iter(0..32)
        .map(|_| {
            let mut client = client.clone();
            let request = mark_paid("alice", &order_id, "pay-1");
            async move { client.mark_paid(request).await.map(|r| r.into_inner()) }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for answer in answers {
        assert_eq!(
            answer.expect("every repeat is answered as paid").status,
            "paid"
        );
    }
    f.service.stop().await;
}

async fn validation(database_url: Option<String>) {
    let mut f = fixture(database_url).await;
    let too_many: Vec<(i64, i64)> = (1..=51).map(|p| (p, 1)).collect();
    let mut blank_address = create("alice", &[(1, 1)], "");
    blank_address.shipping_address = "  ".into();
    let mut long_address = create("alice", &[(1, 1)], "");
    long_address.shipping_address = "x".repeat(501);
    let invalid = [
        create("alice", &[], ""),
        create("alice", &too_many, ""),
        create("alice", &[(1, 0)], ""),
        create("alice", &[(1, 100)], ""),
        create("alice", &[(1, -1)], ""),
        create("", &[(1, 1)], ""),
        blank_address,
        long_address,
    ];
    for request in invalid {
        let err = f.client.create_order(request.clone()).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{request:?}");
    }
    assert_eq!(f.peers.inventory.reservation_count(), 0);
    let ok = f
        .client
        .create_order(create("alice", &[(1, 99)], ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.items[0].quantity, 99);
    f.service.stop().await;
}

/// Orders accepted while every broker is down are all published once Kafka is back.
async fn outbox_survives_kafka_outage(database_url: Option<String>) {
    const ORDERS: usize = 200;
    let f = fixture(database_url).await;
    kafka::all_brokers_down(&f.cluster);
    // Still ready: the orders go into the outbox.
    kafka::assert_ready_while_kafka_down(&f.service.url).await;
    let client = f.client.clone();
    let ids: BTreeSet<String> = stream::iter(0..ORDERS)
        .map(|i| {
            let mut client = client.clone();
            async move {
                let request = create(
                    &format!("user-{}", i % 10),
                    &[(200 + i as i64 % 100, 1)],
                    "",
                );
                client
                    .create_order(request)
                    .await
                    .expect("accepted while Kafka is down")
                    .into_inner()
                    .id
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert_eq!(ids.len(), ORDERS);
    let accounting = format!("{}/admin/accounting", f.service.admin_url);
    let (_, during) = testkit::get_json(&accounting).await;
    assert_eq!(during["outbox"]["pending"], ORDERS, "{during}");
    kafka::all_brokers_up(&f.cluster);

    let mut reader = TopicReader::new(&f.bootstrap, TOPIC_ORDERS);
    let events = reader
        .read_until("every order.created", |events| {
            created_order_ids(events).len() >= ORDERS
        })
        .await;
    let created: Vec<&Envelope> = events
        .iter()
        .filter(|e| e.event_type == "order.created")
        .collect();
    let event_ids: HashSet<&str> = created.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(
        event_ids.len(),
        ORDERS,
        "exactly one order.created event per order"
    );
    assert_eq!(created_order_ids(events), ids);
    testkit::eventually("the outbox drained", DEADLINE, || async {
        let (_, report) = testkit::get_json(&accounting).await;
        (report["outbox"]["pending"] == 0).then_some(())
    })
    .await;
    kafka::wait_kafka_ok(&f.service.url).await;
    f.service.stop().await;
}

fn created_order_ids(events: &[Envelope]) -> BTreeSet<String> {
    events
        .iter()
        .filter(|e| e.event_type == "order.created")
        .filter_map(|e| e.data["order_id"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_on_sqlite() {
    lifecycle(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_on_sqlite() {
    idempotency(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_on_sqlite() {
    validation(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_on_sqlite() {
    outbox_survives_kafka_outage(None).await;
}

/// Every scenario again on PostgreSQL, one database each (one server for all: it is slow to set up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_scenarios_on_postgres() {
    let Some(pg) = Postgres::start() else { return };
    lifecycle(Some(pg.database("lifecycle").await)).await;
    idempotency(Some(pg.database("idempotency").await)).await;
    validation(Some(pg.database("validation").await)).await;
    outbox_survives_kafka_outage(Some(pg.database("outbox").await)).await;
}

/// Set for the copy of this test binary that plays the order service process.
const CHILD_ENV: &str = "SHOP_ORDER_TEST_CHILD";

/// Not a test by itself: `orders_survive_a_killed_process` runs this binary again with
/// `--ignored --exact order_service_process` and `SHOP_ORDER_TEST_CHILD` set, and this function is
/// then the order service process it kills. Ignored, so a plain test run reports it as such
/// instead of counting a pass that checked nothing; run on its own it fails and says why.
#[test]
#[ignore = "the order service process of orders_survive_a_killed_process, which runs it"]
fn order_service_process() {
    assert!(
        std::env::var_os(CHILD_ENV).is_some(),
        "order_service_process is the child of orders_survive_a_killed_process: run that test"
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = ServiceConfig::from_env("order", 50051).unwrap();
        order::run(Runtime::new(config).unwrap()).await.unwrap();
    });
}

/// An order service in a child process, killed (SIGKILL) when dropped.
struct ServiceProcess {
    child: Child,
    url: String,
}

impl ServiceProcess {
    async fn start(data_dir: &std::path::Path, bootstrap: &str, peers: &FakePeers) -> Self {
        let listen = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(data_dir.join("service.log")).unwrap();
        let child = Command::new(std::env::current_exe().unwrap())
            .args([
                "order_service_process",
                "--ignored",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .env("LISTEN_ADDR", &listen)
            .env("ADMIN_ADDR", format!("127.0.0.1:{}", free_port()))
            .env("DATA_DIR", data_dir)
            .env_remove("DATABASE_URL")
            .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
            .env("OFFER_URL", &peers.url)
            .env("INVENTORY_URL", &peers.url)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let process = Self {
            child,
            url: format!("http://{listen}"),
        };
        let health = format!("{}/health", process.url);
        testkit::eventually("the order process answers /health", DEADLINE, || {
            let request = reqwest::get(health.clone());
            async move {
                request
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ())
            }
        })
        .await;
        process
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kill -9 the service with some events published and some still in the outbox (Kafka down),
/// start it again on the same data: every acknowledged order is there and its event is
/// published with one event id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_survive_a_killed_process() {
    const PER_PHASE: usize = 20;
    let cluster = kafka::cluster();
    let bootstrap = cluster.bootstrap_servers();
    let peers = FakePeers::start().await;
    let dir = tempfile::tempdir().unwrap();

    let first = ServiceProcess::start(dir.path(), &bootstrap, &peers).await;
    let mut client = Client::connect(first.url.clone()).await.unwrap();
    let mut acknowledged: HashMap<String, Order> = HashMap::new();
    for i in 0..PER_PHASE {
        let order = client
            .create_order(create("carol", &[(20 + i as i64, 1)], ""))
            .await
            .unwrap();
        acknowledged.insert(order.get_ref().id.clone(), order.into_inner());
    }
    let mut reader = TopicReader::new(&bootstrap, TOPIC_ORDERS);
    reader
        .read_until("the first orders' events", |events| {
            created_order_ids(events).len() >= PER_PHASE
        })
        .await;

    kafka::all_brokers_down(&cluster);
    for i in 0..PER_PHASE {
        let order = client
            .create_order(create("carol", &[(100 + i as i64, 1)], ""))
            .await
            .unwrap();
        acknowledged.insert(order.get_ref().id.clone(), order.into_inner());
    }
    first.kill();
    kafka::all_brokers_up(&cluster);

    let second = ServiceProcess::start(dir.path(), &bootstrap, &peers).await;
    let mut client = Client::connect(second.url.clone()).await.unwrap();
    for (id, order) in &acknowledged {
        let stored = client
            .get_order(get("carol", id))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(&stored, order);
    }
    let events = reader
        .read_until("every acknowledged order's event", |events| {
            created_order_ids(events).len() >= acknowledged.len()
        })
        .await;
    let expected: BTreeSet<String> = acknowledged.keys().cloned().collect();
    assert_eq!(created_order_ids(events), expected);
    for id in &expected {
        let event_ids: HashSet<&str> = events_of(events, "order.created", id)
            .iter()
            .map(|e| e.event_id.as_str())
            .collect();
        assert_eq!(
            event_ids.len(),
            1,
            "order {id} announced under several event ids"
        );
    }
    drop(second);
}
