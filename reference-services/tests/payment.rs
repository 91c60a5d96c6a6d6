//! The payment service end to end: it pays orders of a real order service (with fake offer and
//! inventory peers) on a mock Kafka cluster, refuses wrong amounts, second payments and other
//! users' orders, and refunds a charge whose order was cancelled while it was being paid.
//! Idempotency keys (repeats, concurrent repeats, a key reused for another request) and the
//! refund when a paid order is cancelled run on SQLite and on a real PostgreSQL.

mod harness;

use harness::{
    fakes::FakePeers,
    kafka::{self, TopicReader},
    postgres::Postgres,
};
use shop::testkit;
use shop::{
    platform::{
        config::ServiceConfig,
        events::{TOPIC_ORDERS, TOPIC_PAYMENTS},
    },
    proto::{
        CancelOrderRequest, CreateOrderRequest, GetOrderRequest, GetPaymentRequest,
        ListOrdersRequest, MarkPaidRequest, Order, OrderItem, OrderList, ProcessPaymentRequest,
        RefundPaymentRequest,
        order_service_client::OrderServiceClient,
        order_service_server::{OrderService, OrderServiceServer},
        payment_service_client::PaymentServiceClient,
    },
    services::{order, payment},
};
use tonic::{Code, Request, Response, Status};

fn pay(user: &str, order_id: &str, amount_cents: i64, method: &str) -> ProcessPaymentRequest {
    ProcessPaymentRequest {
        user_id: user.into(),
        order_id: order_id.into(),
        amount_cents,
        method: method.into(),
        idempotency_key: String::new(),
    }
}

fn new_order(user: &str, product_id: i64) -> CreateOrderRequest {
    CreateOrderRequest {
        user_id: user.into(),
        items: vec![OrderItem {
            product_id,
            quantity: 2,
            unit_price_cents: 0,
        }],
        shipping_address: "2 Test Road".into(),
        idempotency_key: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pays_pending_orders_once_and_only_the_owners() {
    let cluster = kafka::cluster();
    let bootstrap = cluster.bootstrap_servers();
    let peers = FakePeers::start().await;
    let dir = tempfile::tempdir().unwrap();
    let order_peers = peers.order_peers();
    let orders_service =
        testkit::start_with(testkit::config("order", dir.path(), &bootstrap), |rt| {
            order::run_with(rt, order_peers)
        })
        .await;
    let order_url = orders_service.url.clone();
    let payments_service = testkit::start_with(
        testkit::config("payment", dir.path(), &bootstrap),
        move |rt| async move { payment::run_with(rt, &order_url).await },
    )
    .await;
    let mut orders = OrderServiceClient::connect(orders_service.url.clone())
        .await
        .unwrap();
    let mut payments = PaymentServiceClient::connect(payments_service.url.clone())
        .await
        .unwrap();

    let order = orders
        .create_order(new_order("dave", 5))
        .await
        .unwrap()
        .into_inner();
    let total = order.total_cents;

    let wrong = payments
        .process_payment(pay("dave", &order.id, total - 1, "card"))
        .await;
    assert_eq!(wrong.unwrap_err().code(), Code::InvalidArgument);
    let method = payments
        .process_payment(pay("dave", &order.id, total, "cash"))
        .await;
    assert_eq!(method.unwrap_err().code(), Code::InvalidArgument);
    let foreign = payments
        .process_payment(pay("erin", &order.id, total, "card"))
        .await;
    assert_eq!(
        foreign.unwrap_err().code(),
        Code::NotFound,
        "another user's order is not found"
    );
    let missing = payments
        .process_payment(pay("dave", "no-such-order", total, "card"))
        .await;
    assert_eq!(missing.unwrap_err().code(), Code::NotFound);

    let paid = payments
        .process_payment(pay("dave", &order.id, total, "paypal"))
        .await
        .unwrap();
    let paid = paid.into_inner();
    assert_eq!(paid.status, "succeeded");
    assert_eq!(paid.amount_cents, total);
    assert!(!paid.transaction_id.is_empty());
    let get = GetOrderRequest {
        user_id: "dave".into(),
        order_id: order.id.clone(),
    };
    assert_eq!(
        orders.get_order(get).await.unwrap().into_inner().status,
        "paid"
    );

    let again = payments
        .process_payment(pay("dave", &order.id, total, "card"))
        .await;
    assert_eq!(
        again.unwrap_err().code(),
        Code::FailedPrecondition,
        "an order is paid once"
    );

    let own = GetPaymentRequest {
        user_id: "dave".into(),
        payment_id: paid.id.clone(),
    };
    assert_eq!(payments.get_payment(own).await.unwrap().into_inner(), paid);
    let other = GetPaymentRequest {
        user_id: "erin".into(),
        payment_id: paid.id.clone(),
    };
    assert_eq!(
        payments.get_payment(other).await.unwrap_err().code(),
        Code::NotFound
    );

    let cancelled = orders
        .create_order(new_order("dave", 6))
        .await
        .unwrap()
        .into_inner();
    let cancel = CancelOrderRequest {
        user_id: "dave".into(),
        order_id: cancelled.id.clone(),
    };
    orders.cancel_order(cancel).await.unwrap();
    let late = payments
        .process_payment(pay("dave", &cancelled.id, cancelled.total_cents, "card"))
        .await;
    assert_eq!(late.unwrap_err().code(), Code::FailedPrecondition);

    let mut payment_events = TopicReader::new(&bootstrap, TOPIC_PAYMENTS);
    let events = payment_events
        .read_until("payment.succeeded", |events| !events.is_empty())
        .await;
    assert_eq!(events.len(), 1, "one payment, one event: {events:?}");
    assert_eq!(events[0].event_type, "payment.succeeded");
    assert_eq!(events[0].data["payment_id"], paid.id.as_str());
    assert_eq!(events[0].data["order_id"], order.id.as_str());
    assert_eq!(events[0].data["amount_cents"], total);

    let mut order_events = TopicReader::new(&bootstrap, TOPIC_ORDERS);
    let events = order_events
        .read_until("order.paid", |events| {
            events.iter().any(|e| e.event_type == "order.paid")
        })
        .await;
    let paid_event = events
        .iter()
        .find(|e| e.event_type == "order.paid")
        .unwrap();
    assert_eq!(paid_event.data["payment_id"], paid.id.as_str());

    payments_service.stop().await;
    orders_service.stop().await;
}

/// An order service whose order is pending when looked at, but cancelled by the time it is
/// marked paid: the race between a payment and a cancellation.
struct CancelledMeanwhile;

#[tonic::async_trait]
impl OrderService for CancelledMeanwhile {
    async fn create_order(
        &self,
        _: Request<CreateOrderRequest>,
    ) -> Result<Response<Order>, Status> {
        Err(Status::unimplemented("not needed"))
    }

    async fn get_order(
        &self,
        request: Request<GetOrderRequest>,
    ) -> Result<Response<Order>, Status> {
        let req = request.into_inner();
        Ok(Response::new(Order {
            id: req.order_id,
            user_id: req.user_id,
            status: "pending".into(),
            total_cents: 500,
            ..Default::default()
        }))
    }

    async fn list_orders(
        &self,
        _: Request<ListOrdersRequest>,
    ) -> Result<Response<OrderList>, Status> {
        Err(Status::unimplemented("not needed"))
    }

    async fn cancel_order(
        &self,
        _: Request<CancelOrderRequest>,
    ) -> Result<Response<Order>, Status> {
        Err(Status::unimplemented("not needed"))
    }

    async fn mark_paid(&self, _: Request<MarkPaidRequest>) -> Result<Response<Order>, Status> {
        Err(Status::failed_precondition("order o-race is cancelled"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_for_an_order_cancelled_meanwhile_is_refunded() {
    let cluster = kafka::cluster();
    let bootstrap = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let router =
        tonic::service::Routes::new(OrderServiceServer::new(CancelledMeanwhile)).into_axum_router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let order_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let service = testkit::start_with(
        testkit::config("payment", dir.path(), &bootstrap),
        move |rt| async move { payment::run_with(rt, &order_url).await },
    )
    .await;
    let mut payments = PaymentServiceClient::connect(service.url.clone())
        .await
        .unwrap();

    let refused = payments
        .process_payment(pay("fay", "o-race", 500, "card"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("refunded"),
        "{}",
        refused.message()
    );

    let mut reader = TopicReader::new(&bootstrap, TOPIC_PAYMENTS);
    let events = reader
        .read_until("the refund", |events| {
            events.iter().any(|e| e.event_type == "payment.refunded")
        })
        .await;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, vec!["payment.succeeded", "payment.refunded"]);
    let payment_id = events[1].data["payment_id"].as_str().unwrap().to_string();
    assert_eq!(events[0].data["payment_id"], payment_id.as_str());
    let get = GetPaymentRequest {
        user_id: "fay".into(),
        payment_id,
    };
    let stored = payments.get_payment(get).await.unwrap().into_inner();
    assert_eq!(stored.status, "refunded");

    let retry = payments
        .process_payment(pay("fay", "o-race", 500, "card"))
        .await
        .unwrap_err();
    assert_eq!(
        retry.code(),
        Code::FailedPrecondition,
        "a refunded order is not charged again"
    );
    service.stop().await;
}

fn keyed(
    user: &str,
    order_id: &str,
    amount_cents: i64,
    method: &str,
    key: &str,
) -> ProcessPaymentRequest {
    ProcessPaymentRequest {
        idempotency_key: key.into(),
        ..pay(user, order_id, amount_cents, method)
    }
}

/// Idempotency keys and refunds on cancel, with the payment service's tables in `database_url`
/// (`None`: SQLite).
async fn keys_and_refunds(database_url: Option<String>) {
    let cluster = kafka::cluster();
    let bootstrap = cluster.bootstrap_servers();
    let peers = FakePeers::start().await;
    let dir = tempfile::tempdir().unwrap();
    // Order and payment call each other: the payment service's address is chosen first.
    let payment_config = ServiceConfig {
        database_url,
        ..testkit::config("payment", dir.path(), &bootstrap)
    };
    let order_peers = order::Peers {
        payment: format!("http://{}", payment_config.listen),
        ..peers.order_peers()
    };
    let orders_service =
        testkit::start_with(testkit::config("order", dir.path(), &bootstrap), |rt| {
            order::run_with(rt, order_peers)
        })
        .await;
    let order_url = orders_service.url.clone();
    let payments_service = testkit::start_with(payment_config, move |rt| async move {
        payment::run_with(rt, &order_url).await
    })
    .await;
    let mut orders = OrderServiceClient::connect(orders_service.url.clone())
        .await
        .unwrap();
    let payments = PaymentServiceClient::connect(payments_service.url.clone())
        .await
        .unwrap();
    let status_of = |orders: &OrderServiceClient<_>, order_id: &str| {
        let mut orders = orders.clone();
        let get = GetOrderRequest {
            user_id: "gina".into(),
            order_id: order_id.into(),
        };
        async move { orders.get_order(get).await.unwrap().into_inner().status }
    };

    // A repeat answers with the first payment; the key with another request is refused.
    let first = orders
        .create_order(new_order("gina", 7))
        .await
        .unwrap()
        .into_inner();
    let total = first.total_cents;
    let paid = payments
        .clone()
        .process_payment(keyed("gina", &first.id, total, "card", "key-1"))
        .await
        .unwrap()
        .into_inner();
    let repeat = payments
        .clone()
        .process_payment(keyed("gina", &first.id, total, "card", "key-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(repeat, paid, "same key, same request: the same payment");
    for other in [
        keyed("gina", &first.id, total, "paypal", "key-1"),
        keyed("gina", "another-order", total, "card", "key-1"),
    ] {
        let reused = payments.clone().process_payment(other).await.unwrap_err();
        assert_eq!(reused.code(), Code::AlreadyExists, "{reused:?}");
        assert!(
            reused.message().contains("different payment request"),
            "{reused:?}"
        );
    }
    let elsewhere = orders
        .create_order(new_order("hugo", 7))
        .await
        .unwrap()
        .into_inner();
    let own_key = payments
        .clone()
        .process_payment(keyed(
            "hugo",
            &elsewhere.id,
            elsewhere.total_cents,
            "card",
            "key-1",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(own_key.id, paid.id, "keys are per user");

    // Concurrent repeats of one key: one charge, and every repeat gets it.
    let second = orders
        .create_order(new_order("gina", 8))
        .await
        .unwrap()
        .into_inner();
    let repeats = (0..6).map(|_| {
        let mut payments = payments.clone();
        let request = keyed("gina", &second.id, second.total_cents, "card", "key-2");
        async move { payments.process_payment(request).await }
    });
    let answers = futures::future::join_all(repeats).await;
    let ids: std::collections::BTreeSet<String> = answers
        .into_iter()
        .map(|a| a.expect("every repeat succeeds").into_inner().id)
        .collect();
    assert_eq!(ids.len(), 1, "one payment for six repeats: {ids:?}");

    // One key raced for four different orders: the key's uniqueness lets exactly one through.
    let mut contested = Vec::new();
    for product_id in 20..24 {
        let order = orders
            .create_order(new_order("gina", product_id))
            .await
            .unwrap()
            .into_inner();
        contested.push(order);
    }
    let racers = contested.iter().map(|order| {
        let mut payments = payments.clone();
        let request = keyed("gina", &order.id, order.total_cents, "card", "key-3");
        async move { payments.process_payment(request).await }
    });
    let outcomes = futures::future::join_all(racers).await;
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .filter_map(|o| o.as_ref().err())
            .all(|e| e.code() == Code::AlreadyExists),
        "{outcomes:?}"
    );
    let mut paid_count = 0;
    for order in &contested {
        paid_count += usize::from(status_of(&orders, &order.id).await == "paid");
    }
    assert_eq!(paid_count, 1, "the losers were not charged");

    // Cancelling a paid order refunds it, gives the stock back, and the key still answers.
    let cancel = CancelOrderRequest {
        user_id: "gina".into(),
        order_id: first.id.clone(),
    };
    let cancelled = orders
        .cancel_order(cancel.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.status, "cancelled");
    assert!(peers.inventory.was_released(&first.id), "the goods go back");
    let get = GetPaymentRequest {
        user_id: "gina".into(),
        payment_id: paid.id.clone(),
    };
    let refunded = payments
        .clone()
        .get_payment(get)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refunded.status, "refunded");
    let replay = payments
        .clone()
        .process_payment(keyed("gina", &first.id, total, "card", "key-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replay.id, paid.id, "the key still names its payment");
    assert_eq!(replay.status, "refunded");
    let twice = orders.cancel_order(cancel).await.unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition, "{twice:?}");

    // Refunds are checked: only the owner's payment, only for its order.
    let foreign = RefundPaymentRequest {
        user_id: "hugo".into(),
        order_id: first.id.clone(),
        payment_id: paid.id.clone(),
    };
    let foreign = payments.clone().refund_payment(foreign).await.unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound);
    let mismatched = RefundPaymentRequest {
        user_id: "hugo".into(),
        order_id: first.id.clone(),
        payment_id: own_key.id.clone(),
    };
    let mismatched = payments
        .clone()
        .refund_payment(mismatched)
        .await
        .unwrap_err();
    assert_eq!(mismatched.code(), Code::FailedPrecondition);
    assert_eq!(status_of(&orders, &first.id).await, "cancelled");

    let mut payment_events = TopicReader::new(&bootstrap, TOPIC_PAYMENTS);
    let events = payment_events
        .read_until("the refund", |events| {
            events.iter().any(|e| e.event_type == "payment.refunded")
        })
        .await;
    let charges_of = |order_id: &str| {
        events
            .iter()
            .filter(|e| e.event_type == "payment.succeeded" && e.data["order_id"] == order_id)
            .count()
    };
    assert_eq!(charges_of(&first.id), 1);
    assert_eq!(charges_of(&second.id), 1, "concurrent repeats charged once");
    let refunds: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "payment.refunded")
        .collect();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0].data["payment_id"], paid.id.as_str());

    let mut order_events = TopicReader::new(&bootstrap, TOPIC_ORDERS);
    let events = order_events
        .read_until("the cancellation", |events| {
            events.iter().any(|e| {
                e.event_type == "order.cancelled" && e.data["order_id"] == first.id.as_str()
            })
        })
        .await;
    let cancellation = events
        .iter()
        .find(|e| e.event_type == "order.cancelled" && e.data["order_id"] == first.id.as_str())
        .unwrap();
    assert_eq!(cancellation.data["reason"], "refunded");
    assert_eq!(cancellation.data["payment_id"], paid.id.as_str());

    payments_service.stop().await;
    orders_service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_and_refunds_on_sqlite() {
    keys_and_refunds(None).await;
}

/// The key's unique constraint and the refund on a real PostgreSQL (the payment service's
/// tables; the order service keeps SQLite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_and_refunds_on_postgres() {
    let Some(pg) = Postgres::start() else { return };
    keys_and_refunds(Some(pg.database("payments").await)).await;
}
